#!/usr/bin/env python3
"""tools.verify_draw: an outside auditor's check of a double-random draw, from the public page alone.

    python3 tools/verify_draw.py https://gridgov.example.cn 42

Fetches /public/inspections/{id} and /public/inspections/{id}/candidates.csv (no credential) and checks, step by
step as docs/INSPECTIONS.md documents them:

1. SHA-256 of the candidate list's bytes = candidates_sha256;
2. SHA-256 of the server seed's 32 bytes = commitment (the seed was fixed before the public value existed);
3. seed = SHA-256(server seed ‖ UTF-8 bytes of the public value);
4. every stratum's size (its rows in the list) and n = ⌈ratio × size⌉ in exact decimal arithmetic;
5. the selection recomputed (candidates ordered by hex HMAC-SHA256(seed, "stratum_id|uscc"), the first n) equals
   the published `selected` credit codes.

Exit 0 when every check holds, 1 when any fails (or the plan is not drawn yet), 2 when the pages cannot be read.
Python standard library only: it must run anywhere, with nothing of gridgov installed.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import math
import sys
import urllib.error
import urllib.request
from decimal import Decimal, InvalidOperation

HEADER = "stratum_id,uscc"
TIMEOUT_S = 60


def fetch(url: str) -> bytes:
    """The body of a GET, or an OSError/HTTPError the caller reports."""
    request = urllib.request.Request(url, headers={"Accept": "*/*", "User-Agent": "gridgov-verify-draw/1"})
    with urllib.request.urlopen(request, timeout=TIMEOUT_S) as response:
        body: bytes = response.read()
        return body


def parse_candidates(data: bytes) -> tuple[dict[str, list[str]], list[str]]:
    """The candidate list's members per stratum, and any way its bytes break the documented format."""
    problems = []
    if data.startswith(b"\xef\xbb\xbf"):
        problems.append("候选名单不应带 BOM")
    text = data.decode("utf-8")
    if "\r" in text:
        problems.append("候选名单应以 LF 换行")
    lines = text.split("\n")
    if not lines or lines[0] != HEADER:
        problems.append(f"候选名单首行应为 {HEADER}")
    if lines and lines[-1] != "":
        problems.append("候选名单应以换行结束")
    body = lines[1:-1] if len(lines) > 1 else []
    members: dict[str, list[str]] = {}
    pairs = []
    for number, line in enumerate(body, start=2):
        parts = line.split(",")
        if len(parts) != 2 or not parts[0] or not parts[1]:
            problems.append(f"第 {number} 行格式不对：{line!r}")
            continue
        pairs.append((parts[0], parts[1]))
        members.setdefault(parts[0], []).append(parts[1])
    if pairs != sorted(pairs):
        problems.append("候选名单应按 (stratum_id, uscc) 排序")
    if len(set(pairs)) != len(pairs):
        problems.append("候选名单有重复行")
    return members, problems


def recompute(seed: bytes, stratum_id: str, usccs: list[str], n: int) -> list[str]:
    """The documented selection: ascending hex HMAC-SHA256(seed, 'stratum_id|uscc'), the first n."""
    keyed = sorted((hmac.new(seed, f"{stratum_id}|{u}".encode(), hashlib.sha256).hexdigest(), u) for u in usccs)
    return [u for _, u in keyed[:n]]


def verify(public: dict[str, object], csv_bytes: bytes) -> list[tuple[bool, str]]:
    """Every check, in order, as (passed, what was checked)."""
    checks: list[tuple[bool, str]] = []
    digest = hashlib.sha256(csv_bytes).hexdigest()
    checks.append((digest == public["candidates_sha256"], f"SHA-256(candidates.csv) = {digest}"))
    members, problems = parse_candidates(csv_bytes)
    checks.append((not problems, "候选名单格式：" + ("符合" if not problems else "；".join(problems[:5]))))
    if public.get("status") != "drawn" or not public.get("server_seed"):
        checks.append((False, f"计划状态为 {public.get('status')}：尚未摇号，只能核对候选名单"))
        return checks
    server_seed = bytes.fromhex(str(public["server_seed"]))
    checks.append((len(server_seed) == 32, f"服务器种子长度 {len(server_seed)} 字节"))
    commitment = hashlib.sha256(server_seed).hexdigest()
    checks.append((commitment == public["commitment"], f"SHA-256(server_seed) = {commitment}"))
    seed = hashlib.sha256(server_seed + str(public["public_value"]).encode("utf-8")).digest()
    checks.append((seed.hex() == public["seed"], f"seed = SHA-256(server_seed ‖ 公开随机数) = {seed.hex()}"))
    strata = public["strata"]
    assert isinstance(strata, list)
    listed = {str(s["id"]) for s in strata}
    checks.append((listed == set(members), f"分层：公开 {len(listed)} 个，候选名单中 {len(members)} 个"))
    total = 0
    for stratum in strata:
        sid = str(stratum["id"])
        usccs = members.get(sid, [])
        try:
            ratio = Decimal(str(stratum["ratio"]))
        except InvalidOperation:
            checks.append((False, f"{sid}：比例 {stratum['ratio']!r} 不是十进制小数"))
            continue
        n = math.ceil(ratio * len(usccs))
        ok_size = len(usccs) == stratum["size"]
        ok_n = n == stratum["n"]
        chosen = sorted(recompute(seed, sid, usccs, n))
        ok_selected = chosen == sorted(stratum["selected"])
        total += len(chosen)
        checks.append(
            (
                ok_size and ok_n and ok_selected,
                f"{sid}：候选 {len(usccs)}（公布 {stratum['size']}），比例 {ratio}，"
                f"n = ⌈{ratio} × {len(usccs)}⌉ = {n}（公布 {stratum['n']}），"
                f"抽中 {'一致' if ok_selected else '不一致'}",
            )
        )
    checks.append((True, f"共复核 {len(strata)} 个分层、抽中 {total} 项"))
    return checks


def main(argv: list[str]) -> int:
    """Fetch, check, print a report; the exit code says whether the draw is the documented one."""
    if len(argv) != 3:
        print("用法：python3 tools/verify_draw.py URL_BASE PLAN_ID", file=sys.stderr)
        return 2
    base, plan_id = argv[1].rstrip("/"), argv[2]
    try:
        public = json.loads(fetch(f"{base}/public/inspections/{plan_id}"))
        csv_bytes = fetch(f"{base}/public/inspections/{plan_id}/candidates.csv")
    except (OSError, urllib.error.HTTPError, ValueError) as exc:
        print(f"无法读取公开页面：{exc}", file=sys.stderr)
        return 2
    print(f"抽查计划 {public.get('id')}：{public.get('title')}（{public.get('status')}）")
    print(f"公开随机数：{public.get('public_value')!r}（来源：{public.get('public_value_source')}）")
    checks = verify(public, csv_bytes)
    for passed, what in checks:
        print(("通过  " if passed else "不通过 ") + what)
    ok = all(passed for passed, _ in checks)
    print("结论：抽取结果与公开算法一致" if ok else "结论：复核未通过")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv))
