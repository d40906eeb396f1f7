/**
 * inspections/print.js: the route sheets' 打印 button (the sheets themselves are served ready to print).
 */

document.getElementById("print-now").addEventListener("click", () => window.print());
