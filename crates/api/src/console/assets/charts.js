// Bar charts as SVG, drawn from the dashboard's figures. Each chart has a title and a
// description for screen readers, and every bar is labelled with its value.

const NS = 'http://www.w3.org/2000/svg';

function el(name, attrs = {}, text) {
  const node = document.createElementNS(NS, name);
  for (const [k, v] of Object.entries(attrs)) node.setAttribute(k, String(v));
  if (text !== undefined) node.textContent = text;
  return node;
}

/**
 * A horizontal bar chart of `rows` ([{label, value}]); `format` renders a value.
 * Returns an <svg> element.
 */
export function barChart(title, rows, format = (v) => String(v)) {
  const barHeight = 24;
  const gap = 6;
  const labelWidth = 160;
  const width = 420;
  const height = Math.max(1, rows.length) * (barHeight + gap) + gap;
  const max = Math.max(1, ...rows.map((r) => r.value || 0));
  const id = `chart-${Math.random().toString(36).slice(2)}`;
  const svg = el('svg', {
    viewBox: `0 0 ${width} ${height}`,
    role: 'img',
    'aria-labelledby': `${id}-t ${id}-d`,
    class: 'chart',
  });
  svg.append(el('title', { id: `${id}-t` }, title));
  svg.append(el('desc', { id: `${id}-d` }, rows.map((r) => `${r.label}: ${format(r.value)}`).join('; ') || 'No data'));
  rows.forEach((r, i) => {
    const y = gap + i * (barHeight + gap);
    const w = Math.round(((r.value || 0) / max) * (width - labelWidth - 70));
    svg.append(el('text', { x: labelWidth - 8, y: y + barHeight * 0.7, 'text-anchor': 'end', class: 'chart-label' }, r.label));
    svg.append(el('rect', { x: labelWidth, y, width: Math.max(w, 1), height: barHeight, class: 'chart-bar', rx: 2 }));
    svg.append(el('text', { x: labelWidth + Math.max(w, 1) + 6, y: y + barHeight * 0.7, class: 'chart-value' }, format(r.value)));
  });
  return svg;
}

/** A column chart of a daily series ([{label, value}]), for publications per day. */
export function columnChart(title, rows) {
  const width = 420;
  const height = 170;
  const base = height - 24;
  const max = Math.max(1, ...rows.map((r) => r.value || 0));
  const step = width / Math.max(1, rows.length);
  const id = `chart-${Math.random().toString(36).slice(2)}`;
  const svg = el('svg', { viewBox: `0 0 ${width} ${height}`, role: 'img', 'aria-labelledby': `${id}-t ${id}-d`, class: 'chart' });
  svg.append(el('title', { id: `${id}-t` }, title));
  const total = rows.reduce((a, r) => a + (r.value || 0), 0);
  svg.append(el('desc', { id: `${id}-d` }, `${total} in ${rows.length} days; ${rows.filter((r) => r.value).map((r) => `${r.label}: ${r.value}`).join('; ')}`));
  svg.append(el('line', { x1: 0, y1: base, x2: width, y2: base, class: 'chart-axis' }));
  rows.forEach((r, i) => {
    const h = Math.round(((r.value || 0) / max) * (base - 16));
    const x = i * step + step * 0.15;
    svg.append(el('rect', { x, y: base - h, width: Math.max(step * 0.7, 1), height: h, class: 'chart-bar' }));
    if (r.value) svg.append(el('text', { x: x + step * 0.35, y: base - h - 3, 'text-anchor': 'middle', class: 'chart-value' }, String(r.value)));
  });
  if (rows.length) {
    svg.append(el('text', { x: 0, y: height - 6, class: 'chart-label' }, rows[0].label));
    svg.append(el('text', { x: width, y: height - 6, 'text-anchor': 'end', class: 'chart-label' }, rows[rows.length - 1].label));
  }
  return svg;
}
