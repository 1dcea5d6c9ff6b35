import { describe, expect, it } from 'vitest';
import { encodeMessage, FrameDecoder, FramingError } from '../../../providers/netconf/client/framing.js';

const collect = (max?: number): { d: FrameDecoder; out: string[] } => {
  const out: string[] = [];
  const d = new FrameDecoder((m) => out.push(m.toString('utf8')), max ? { maxMessageBytes: max } : {});
  return { d, out };
};
/** Feeds `bytes` in pieces of the given sizes (cycling), as reads would split them. */
const feed = (d: FrameDecoder, bytes: Buffer, sizes: number[]): void => {
  let i = 0;
  for (let at = 0; at < bytes.length; i++) {
    const n = sizes[i % sizes.length]!;
    d.push(bytes.subarray(at, at + n));
    at += n;
  }
};

describe('base:1.0 end-of-message framing', () => {
  it('splits messages on ]]>]]>, whatever the read boundaries (the delimiter split too)', () => {
    const bytes = Buffer.from('<a/>]]>]]><b>x</b>]]>]]><c/>]]>]]>');
    for (const sizes of [[1], [2], [3], [5], [7, 1], [bytes.length]]) {
      const { d, out } = collect();
      feed(d, bytes, sizes);
      expect(out, `split ${sizes.join(',')}`).toEqual(['<a/>', '<b>x</b>', '<c/>']);
      expect(d.buffered).toBe(0);
    }
  });

  it('a partial delimiter is data until completed: "]]>]]" then more text', () => {
    const { d, out } = collect();
    d.push(Buffer.from('<a>]]>]'));
    d.push(Buffer.from(']x</a>]]>]]>'));
    expect(out).toEqual(['<a>]]>]]x</a>']);
  });

  it('refuses a message over the limit before it has all arrived', () => {
    const { d, out } = collect(100);
    expect(() => d.push(Buffer.alloc(200, 0x61))).toThrow(FramingError);
    expect(out).toEqual([]);
    // Once failed, it stays failed.
    expect(() => d.push(Buffer.from(']]>]]>'))).toThrow(/larger than 100 bytes/);
  });

  it('a message of exactly the limit passes; one byte more does not', () => {
    const ok = collect(10);
    ok.d.push(Buffer.from('0123456789]]>]]>'));
    expect(ok.out).toEqual(['0123456789']);
    const over = collect(10);
    expect(() => over.d.push(Buffer.from('0123456789A]]>]]>'))).toThrow(FramingError);
  });

  it('encoding refuses a body that contains the delimiter', () => {
    expect(() => encodeMessage('<a>]]>]]></a>', 'eom')).toThrow(FramingError);
    expect(encodeMessage('<a/>', 'eom').toString()).toBe('<a/>]]>]]>');
  });
});

describe('base:1.1 chunked framing', () => {
  const chunked = (...chunks: string[]): Buffer => Buffer.from(chunks.map((c) => `\n#${Buffer.byteLength(c)}\n${c}`).join('') + '\n##\n');

  it('joins chunks into a message, split across reads anywhere (headers too)', () => {
    const bytes = Buffer.concat([chunked('<rpc-reply>', 'héllo', '</rpc-reply>'), chunked('<b/>')]);
    for (const sizes of [[1], [2], [3], [4, 9], [bytes.length]]) {
      const { d, out } = collect();
      d.setFraming('chunked');
      feed(d, bytes, sizes);
      expect(out, `split ${sizes.join(',')}`).toEqual(['<rpc-reply>héllo</rpc-reply>', '<b/>']);
    }
  });

  it(']]>]]> inside data is just data under 1.1', () => {
    const { d, out } = collect();
    d.setFraming('chunked');
    d.push(chunked('<data>]]>]]>', '</data>'));
    expect(out).toEqual(['<data>]]>]]></data>']);
  });

  it('the framing switches after the hello, for bytes already in the same read', () => {
    const out: string[] = [];
    const d = new FrameDecoder((m) => {
      out.push(m.toString());
      if (out.length === 1) d.setFraming('chunked');
    });
    d.push(Buffer.concat([Buffer.from('<hello/>]]>]]>'), chunked('<rpc-reply/>')]));
    expect(out).toEqual(['<hello/>', '<rpc-reply/>']);
  });

  it('refuses an announced chunk that would pass the limit, before its data arrives', () => {
    const { d } = collect(1024);
    d.setFraming('chunked');
    expect(() => d.push(Buffer.from('\n#999999\n'))).toThrow(/announced/);
    const two = collect(10);
    two.d.setFraming('chunked');
    two.d.push(Buffer.from('\n#6\nabcdef'));
    expect(() => two.d.push(Buffer.from('\n#6\n'))).toThrow(FramingError);
  });

  it('refuses malformed headers', () => {
    for (const bad of ['#4\nabcd', '\n#0\n', '\n#01\n', '\n#-1\n', '\n#4294967296\n', '\n#12345678901\n', '\nx', '\n#a\n', '\n##\n', '\n##x']) {
      const { d } = collect();
      d.setFraming('chunked');
      expect(() => d.push(Buffer.from(bad)), JSON.stringify(bad)).toThrow(FramingError);
    }
  });

  it('encodes one chunk per message', () => {
    expect(encodeMessage('<a/>', 'chunked').toString()).toBe('\n#4\n<a/>\n##\n');
    expect(encodeMessage('é', 'chunked').toString()).toBe('\n#2\né\n##\n');
  });
});
