// Both legs of a call: the A-leg and the B-legs a B2BUA/SBC made of one call (the sensor
// groups them: `group` is the A-leg's Call-ID, `leg` "a" or "b", `correlated_by` what tied
// them; see docs/manager-protocol.md, "Both legs of a call"). The list shows each B-leg under
// its A-leg, indented, and an A-leg's B-legs can be folded away.
//
// The grouping is of the rows the page holds (the stream's window): an A-leg and its B-legs
// start within a second of each other, so they sit together in the sensor's order; a B-leg
// whose A-leg is outside the window stays where it is, marked.

const collapsed = new Set(); // group keys ("sensor|group") whose B-legs are folded

export const groupKey = (c) => (c.group ? `${c.sensor_id}|${c.group}` : null);
export const isA = (c) => !!c.group && c.leg === "a";
export const isB = (c) => !!c.group && c.leg === "b";

// `calls` in list order, with every B-leg moved right after its A-leg (if the A-leg is here).
export function groupLegs(calls) {
  const aLegs = new Set(calls.filter(isA).map(groupKey));
  const under = new Map();
  for (const c of calls) {
    if (!isB(c) || !aLegs.has(groupKey(c))) continue;
    const k = groupKey(c);
    if (!under.has(k)) under.set(k, []);
    under.get(k).push(c);
  }
  const out = [];
  for (const c of calls) {
    if (isB(c) && aLegs.has(groupKey(c))) continue;
    out.push(c);
    if (isA(c)) out.push(...(under.get(groupKey(c)) || []));
  }
  return out;
}

// The B-legs of A-leg `a` among `calls`.
export function bLegsOf(calls, a) {
  const k = groupKey(a);
  return isA(a) ? calls.filter((c) => isB(c) && groupKey(c) === k) : [];
}

// What the State column adds for a leg.
export function legNote(c, calls) {
  if (isA(c)) {
    const n = bLegsOf(calls, c).length;
    return `A-leg${n ? ` · ${n} B-leg${n > 1 ? "s" : ""}` : ""}`;
  }
  if (isB(c)) return `B-leg of ${c.group} (${c.correlated_by || "?"})`;
  return "";
}

export const isCollapsed = (c) => collapsed.has(groupKey(c));

// Folds or unfolds an A-leg's B-legs; true when they are now folded.
export function toggle(a) {
  const k = groupKey(a);
  if (collapsed.has(k)) collapsed.delete(k);
  else collapsed.add(k);
  return collapsed.has(k);
}
