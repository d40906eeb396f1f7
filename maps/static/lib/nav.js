/**
 * lib/nav.js: the top bar's links between the pages, each shown only to a caller whose capabilities open it.
 *
 * Reads GET /v1/me with a plain fetch (never the API client: a stranger on the login page must not be sent to
 * the login page again); without a session nothing is drawn. The phone page of grid workers has no such bar.
 */

const PAGES = [
  { href: "/", label: "指挥地图", needs: null },
  { href: "/clues", label: "线索", needs: "clue.read" },
  { href: "/review", label: "待核登记", needs: "review.read" },
  { href: "/heatmap", label: "热力图", needs: "heatmap.read" },
  { href: "/staffing", label: "人员配置", needs: "workload.read" },
  { href: "/grid-versions", label: "网格调整", needs: "workload.read" },
  { href: "/inspections", label: "双随机抽查", needs: "inspection.read" },
];

async function drawNav() {
  const nav = document.getElementById("pages-nav");
  if (!nav || document.querySelector("main.field")) return;
  let me;
  try {
    const answer = await fetch("/v1/me", { credentials: "same-origin", headers: { Accept: "application/json" } });
    if (!answer.ok) return;
    me = await answer.json();
  } catch {
    return;
  }
  const granted = new Set(me.capabilities || []);
  const here = window.location.pathname;
  for (const page of PAGES) {
    if (page.needs && !granted.has(page.needs)) continue;
    const link = document.createElement("a");
    link.href = page.href;
    link.textContent = page.label;
    const current = page.href === "/" ? here === "/" : here === page.href || here.startsWith(`${page.href}/`);
    if (current) link.setAttribute("aria-current", "page");
    nav.append(link);
  }
}

drawNav();
