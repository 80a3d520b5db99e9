/**
 * The summary chart (bench/results/summary.svg and .png): a Vega-Lite spec, compiled to Vega and
 * rendered to SVG in Node (no canvas), then to PNG by resvg with DejaVu Sans loaded from its file
 * (fonts-dejavu-core, in .ci/setup's packages), so the PNG has the same text wherever it is drawn.
 */
import {existsSync} from 'node:fs';

import {Resvg} from '@resvg/resvg-js';
import * as vega from 'vega';
import {compile, type TopLevelSpec} from 'vega-lite';

/** One bar: a figure of ours, or a baseline (another way to do the same thing, not pcluster). */
export interface Bar {
  /** `speedup`: x faster than the baseline, higher is better; `cost`: x the baseline's time, lower is better. */
  readonly panel: `speedup` | `cost`;
  readonly label: string;
  readonly value: number;
  readonly kind: `ours` | `baseline`;
  /** Ours only: the target, when the figure has one (else it is reported, not judged). */
  readonly target?: number;
}

const FONT_DIR = `/usr/share/fonts/truetype/dejavu`;
const FONT_FILES = [`DejaVuSans.ttf`, `DejaVuSans-Bold.ttf`].map(name => `${FONT_DIR}/${name}`);
const FONT = `DejaVu Sans`;

const KINDS = [`pcluster, target met`, `pcluster, target missed`, `pcluster, reported (no target)`, `baseline (not pcluster)`] as const;
const COLOURS = [`#2e8b57`, `#c83c32`, `#4a78b5`, `#a8a8a8`];

const PANELS = {
  speedup: {
    title: `Speed-ups: higher is better`,
    axis: `x faster than the baseline (log scale)`,
    scale: {type: `log`, domain: [1, 200], nice: false} as const,
    reference: `baseline = 1x`,
  },
  cost: {
    title: `Costs: lower is better`,
    axis: `x the baseline's time (1 = as fast as the baseline)`,
    scale: {type: `linear`, domainMin: 0} as const,
    reference: `baseline = 1x`,
  },
};

function kindOf(bar: Bar): (typeof KINDS)[number] {
  if (bar.kind === `baseline`)
    return `baseline (not pcluster)`;
  if (bar.target === undefined)
    return `pcluster, reported (no target)`;
  const met = bar.panel === `speedup` ? bar.value >= bar.target : bar.value <= bar.target;
  return met ? `pcluster, target met` : `pcluster, target missed`;
}

function ratio(value: number): string {
  return `${value >= 10 ? value.toFixed(1) : value.toFixed(2)}x`;
}

function panelSpec(panel: Bar[`panel`], bars: readonly Bar[]) {
  const {title, axis, scale, reference} = PANELS[panel];
  const rows = bars.filter(bar => bar.panel === panel).map(bar => ({
    label: bar.label,
    value: bar.value,
    base: panel === `speedup` ? 1 : 0,
    kind: kindOf(bar),
    target: bar.target ?? null,
    // The figure's text right of both its bar and its target tick.
    textAt: Math.max(bar.value, bar.target ?? bar.value),
    text: bar.target === undefined
      ? ratio(bar.value)
      : `${ratio(bar.value)}  (target ${panel === `speedup` ? `≥` : `≤`} ${ratio(bar.target).replace(/\.0x$/, `x`)})`,
  }));
  const y = {field: `label`, type: `nominal`, sort: null, title: null, axis: {labelLimit: 0, labelFontSize: 13, labelPadding: 6}} as const;
  return {
    title: {text: title, anchor: `start`, frame: `group`, fontSize: 15},
    width: 460,
    height: {step: 34},
    data: {values: rows},
    layer: [
      {
        mark: {type: `bar`, height: 20},
        encoding: {
          y,
          x: {field: `value`, type: `quantitative`, scale, title: axis, axis: {titleFontSize: 13, labelFontSize: 12, grid: true}},
          x2: {field: `base`},
          color: {field: `kind`, type: `nominal`, scale: {domain: [...KINDS], range: COLOURS}, legend: {title: null, orient: `bottom`, direction: `vertical`, labelFontSize: 13, labelLimit: 0}},
        },
      },
      {
        mark: {type: `tick`, orient: `vertical`, thickness: 3, size: 30, color: `#000000`},
        transform: [{filter: `datum.target !== null`}],
        encoding: {y, x: {field: `target`, type: `quantitative`}},
      },
      {
        mark: {type: `text`, align: `left`, dx: 8, fontSize: 13, color: `#202020`},
        encoding: {y, x: {field: `textAt`, type: `quantitative`}, text: {field: `text`}},
      },
      {
        data: {values: [{at: 1}]},
        layer: [
          {mark: {type: `rule`, color: `#505050`, strokeDash: [4, 3], strokeWidth: 1.5}, encoding: {x: {field: `at`, type: `quantitative`}}},
          {mark: {type: `text`, align: `left`, baseline: `bottom`, dx: 4, dy: -2, fontSize: 11, color: `#505050`, y: 0}, encoding: {x: {field: `at`, type: `quantitative`}, text: {value: reference}}},
        ],
      },
    ],
  };
}

/** The chart as SVG and PNG (twice the SVG's size, on white). */
export async function renderChart(title: string, subtitle: readonly string[], bars: readonly Bar[]): Promise<{svg: string, png: Buffer}> {
  const spec = {
    $schema: `https://vega.github.io/schema/vega-lite/v6.json`,
    title: {text: title, subtitle: [...subtitle], anchor: `start`, fontSize: 18, subtitleFontSize: 13, subtitleColor: `#404040`, offset: 14},
    background: `#ffffff`,
    padding: 16,
    config: {font: FONT, view: {stroke: null}, tick: {bandSize: 30}},
    vconcat: [panelSpec(`speedup`, bars), panelSpec(`cost`, bars)],
    spacing: 28,
  } as unknown as TopLevelSpec;
  const view = new vega.View(vega.parse(compile(spec).spec), {renderer: `none`});
  const svg = await view.toSVG();
  view.finalize();
  const missing = FONT_FILES.filter(file => !existsSync(file));
  if (missing.length > 0)
    throw new Error(`bench/chart.ts: ${missing.join(`, `)} missing (Debian: apt-get install fonts-dejavu-core)`);
  const png = new Resvg(svg, {
    background: `#ffffff`,
    fitTo: {mode: `zoom`, value: 2},
    font: {loadSystemFonts: false, fontFiles: FONT_FILES, defaultFontFamily: FONT, sansSerifFamily: FONT},
  }).render().asPng();
  return {svg, png};
}
