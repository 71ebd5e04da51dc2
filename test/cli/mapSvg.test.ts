import { describe, expect, it } from 'vitest';
import { renderMapSvg, type MapPicture } from '../../src/cli/mapSvg.js';
import { RangeSet, RangeSetBuilder } from '../../src/guest/ranges.js';

const TiB = 1024 ** 4;
const E = RangeSet.EMPTY;

function picture(over: Partial<MapPicture> = {}): MapPicture {
  return {
    title: 'child.vhd', size: 64 * 1024 * 1024,
    layers: [{ label: 'leaf: child.vhd', blocks: RangeSet.of(0, 4 << 20) }, { label: 'parent 1: base.vhd', blocks: RangeSet.of(0, 64 << 20) }],
    leaf: { file: RangeSet.of(0, 32 << 20), metadata: E, free: RangeSet.of(32 << 20, 64 << 20), outside: E, unknown: E },
    partitions: [{ start: 1 << 20, end: 64 << 20, label: '1: ntfs' }],
    ...over,
  };
}

/** The x extents [x0, x1) the path of a given fill colour covers. */
function extents(svg: string, color: string): Array<[number, number]> {
  const m = new RegExp(`<path fill="${color}" d="([^"]*)"`).exec(svg);
  if (!m) return [];
  return [...m[1].matchAll(/M(\d+) \d+h(\d+)/g)].map((x) => [Number(x[1]), Number(x[1]) + Number(x[2])]);
}

describe('map --svg picture', () => {
  it('is deterministic: the same map gives the same bytes', () => {
    expect(renderMapSvg(picture())).toBe(renderMapSvg(picture()));
  });

  it('colours the leaf strip by meaning: the first half file data, the second half free', () => {
    const svg = renderMapSvg(picture());
    expect(extents(svg, '#2f6fdf')).toEqual([[150, 650]]);
    expect(extents(svg, '#46b35a')).toEqual([[650, 1150]]);
    expect(svg).toContain('file data: 32.00 MiB');
    expect(svg).toContain('free space (reclaimable): 32.00 MiB');
  });

  it('draws one strip per layer with the blocks it holds, and marks partition boundaries', () => {
    const svg = renderMapSvg(picture());
    const layer = [...svg.matchAll(/<path fill="#5b6b82" d="([^"]*)"/g)].map((m) => m[1]);
    expect(layer).toEqual(['M150 106h63v16h-63z', 'M150 128h1000v16h-1000z']);
    expect(svg).toMatch(/<path d="M166 42V\d+M1150 42V\d+" stroke="#000000"/);
  });

  it('stays under 1 MB for a 2 TiB disk with the worst pattern in every strip', () => {
    const size = 2 * TiB;
    const alt = (phase: number) => {
      const b = new RangeSetBuilder();
      const step = size / 2000;
      for (let i = phase; i < 2000; i += 2) b.add(i * step, (i + 1) * step);
      return b.build();
    };
    const svg = renderMapSvg(picture({
      size,
      layers: Array.from({ length: 40 }, (_, i) => ({ label: `layer ${i}`, blocks: alt(i % 2) })),
      leaf: { file: alt(0), metadata: alt(1), free: E, outside: E, unknown: E },
      partitions: Array.from({ length: 128 }, (_, i) => ({ start: i * (size / 128), end: (i + 1) * (size / 128), label: `${i + 1}: ntfs` })),
    }));
    expect(svg.length).toBeLessThan(1_000_000);
    expect(svg).toContain('… and 8 more layers');
  });

  it('escapes what file and disk names can hold (markup, control characters)', () => {
    const svg = renderMapSvg(picture({ title: 'a<b>&"c"\u0001.vhd', layers: [{ label: 'leaf: </svg><script>', blocks: E }] }));
    expect(svg).not.toContain('<script>');
    expect(svg).toContain('a&lt;b&gt;&amp;&quot;c&quot;\ufffd.vhd');
    expect((svg.match(/<svg /g) ?? []).length).toBe(1);
    expect(svg.trimEnd().endsWith('</svg>')).toBe(true);
  });
});
