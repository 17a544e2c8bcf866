/** A grouped bar chart on a logarithmic axis, as a self-contained SVG (no chart library). */
import { formatNs } from './stats';

export interface Series {
  name: string;
  color: string;
  /** One value per group, ns; NaN or missing draws no bar. */
  values: number[];
}

export interface BarChart {
  title: string;
  subtitle?: string;
  groups: string[];
  series: Series[];
  yLabel: string;
}

function esc(s: string): string {
  return s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;');
}

export function barChartSvg(c: BarChart): string {
  const values = c.series.flatMap((s) => s.values).filter((v) => Number.isFinite(v) && v > 0);
  const lo = Math.floor(Math.log10(values.length ? Math.min(...values) : 1e3));
  const hi = Math.ceil(Math.log10(values.length ? Math.max(...values) : 1e6));
  const decades = Math.max(1, hi - lo);
  const bar = 13;
  const groupGap = 22;
  const groupWidth = c.series.length * bar + groupGap;
  const left = 78;
  const top = c.subtitle ? 62 : 44;
  const plotH = 300;
  const bottom = 110;
  const legendH = 24;
  // Wide enough for the title and subtitle too (a rough width per character), so that a
  // chart of few groups does not cut them off.
  const textWidth = Math.max(c.title.length * 8.5, (c.subtitle?.length ?? 0) * 6);
  const width = Math.ceil(left + Math.max(c.groups.length * groupWidth, textWidth) + 20);
  const height = top + legendH + plotH + bottom;
  const plotTop = top + legendH;
  const y = (v: number) => plotTop + plotH - ((Math.log10(v) - lo) / decades) * plotH;
  const out: string[] = [];
  out.push(
    `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" viewBox="0 0 ${width} ${height}" font-family="Helvetica, Arial, sans-serif" font-size="11">`,
    `<rect width="100%" height="100%" fill="#fff"/>`,
    `<text x="${left}" y="22" font-size="15" font-weight="bold">${esc(c.title)}</text>`,
  );
  if (c.subtitle) out.push(`<text x="${left}" y="40" font-size="11" fill="#555">${esc(c.subtitle)}</text>`);
  // Legend.
  let lx = left;
  for (const s of c.series) {
    out.push(`<rect x="${lx}" y="${top}" width="12" height="12" fill="${s.color}"/>`, `<text x="${lx + 16}" y="${top + 10}">${esc(s.name)}</text>`);
    lx += 24 + s.name.length * 6.2;
  }
  // Grid and axis labels, one line per decade.
  for (let d = lo; d <= lo + decades; d++) {
    const yy = y(10 ** d).toFixed(1);
    out.push(
      `<line x1="${left}" x2="${width - 20}" y1="${yy}" y2="${yy}" stroke="#ddd"/>`,
      `<text x="${left - 6}" y="${Number(yy) + 4}" text-anchor="end">${esc(formatNs(10 ** d))}</text>`,
    );
  }
  out.push(
    `<text transform="translate(16 ${plotTop + plotH / 2}) rotate(-90)" text-anchor="middle">${esc(c.yLabel)}</text>`,
    `<line x1="${left}" x2="${left}" y1="${plotTop}" y2="${plotTop + plotH}" stroke="#333"/>`,
    `<line x1="${left}" x2="${width - 20}" y1="${plotTop + plotH}" y2="${plotTop + plotH}" stroke="#333"/>`,
  );
  c.groups.forEach((g, gi) => {
    const gx = left + groupGap / 2 + gi * groupWidth;
    c.series.forEach((s, si) => {
      const v = s.values[gi];
      if (v === undefined || !Number.isFinite(v) || v <= 0) return;
      const yy = y(v);
      const x = gx + si * bar;
      out.push(
        `<rect x="${x}" y="${yy.toFixed(1)}" width="${bar - 2}" height="${(plotTop + plotH - yy).toFixed(1)}" fill="${s.color}"><title>${esc(`${g}, ${s.name}: ${formatNs(v)}`)}</title></rect>`,
      );
    });
    const cx = gx + (c.series.length * bar) / 2;
    out.push(`<text transform="translate(${cx} ${plotTop + plotH + 12}) rotate(35)" text-anchor="start">${esc(g)}</text>`);
  });
  out.push('</svg>');
  return `${out.join('\n')}\n`;
}
