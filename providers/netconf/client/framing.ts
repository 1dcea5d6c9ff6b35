/**
 * RFC 6242 framing: base:1.0 end-of-message (`]]>]]>`) and base:1.1 chunked
 * (`\n#<len>\n<data>...\n##\n`). The decoder is incremental (bytes may arrive
 * split anywhere, several messages may arrive in one read) and bounded: a
 * message larger than `maxMessageBytes` is refused as soon as that is known
 * (for chunked framing, from a chunk header alone, before its data arrives).
 */

export type Framing = 'eom' | 'chunked';

export const EOM = ']]>]]>';
const EOM_BYTES = Buffer.from(EOM, 'latin1');
export const DEFAULT_MAX_MESSAGE_BYTES = 16 * 1024 * 1024;
/** RFC 6242 §4.2: chunk-size is 1..4294967295. */
const MAX_CHUNK_SIZE = 4_294_967_295;
/** `\n#` + up to 10 digits + `\n`. */
const MAX_HEADER_BYTES = 13;

export class FramingError extends Error {
  /** `oversize` when the peer sent (or announced) more than the limit; `malformed` otherwise. */
  readonly reason: 'oversize' | 'malformed';
  constructor(reason: 'oversize' | 'malformed', message: string) {
    super(message);
    this.reason = reason;
  }
}

/** Frames one message for sending. Chunked messages are sent as one chunk (the peer's limits are the same as ours for a chunk). */
export function encodeMessage(message: string, framing: Framing): Buffer {
  const body = Buffer.from(message, 'utf8');
  if (framing === 'eom') {
    if (body.includes(EOM_BYTES)) throw new FramingError('malformed', 'a base:1.0 message cannot contain "]]>]]>"');
    return Buffer.concat([body, EOM_BYTES]);
  }
  if (body.length === 0) throw new FramingError('malformed', 'an empty message cannot be chunk-framed');
  return Buffer.concat([Buffer.from(`\n#${body.length}\n`, 'latin1'), body, Buffer.from('\n##\n', 'latin1')]);
}

type ChunkState = { at: 'header'; header: Buffer } | { at: 'data'; remaining: number };

/**
 * Turns a byte stream into messages. `onMessage` is called synchronously for
 * each complete message and may switch the framing (after the hello) before
 * the decoder looks at the bytes that follow it.
 */
export class FrameDecoder {
  readonly #max: number;
  /** Receives each complete message; may be replaced between messages (after the hello). */
  onMessage: (message: Buffer) => void;
  #framing: Framing = 'eom';
  #parts: Buffer[] = [];
  #size = 0;
  #chunk: ChunkState = { at: 'header', header: Buffer.alloc(0) };
  #failed: FramingError | undefined;

  constructor(onMessage: (message: Buffer) => void, options: { maxMessageBytes?: number } = {}) {
    this.onMessage = onMessage;
    this.#max = options.maxMessageBytes ?? DEFAULT_MAX_MESSAGE_BYTES;
  }

  get framing(): Framing {
    return this.#framing;
  }

  /** Switches framing between messages (RFC 6242 §4.1: after both hellos). */
  setFraming(framing: Framing): void {
    if (this.#size > 0) throw new FramingError('malformed', 'framing can only change between messages');
    this.#framing = framing;
    this.#chunk = { at: 'header', header: Buffer.alloc(0) };
  }

  /** Feeds bytes; throws FramingError (and stays failed) on oversize or malformed input. */
  push(data: Buffer): void {
    if (this.#failed) throw this.#failed;
    try {
      let rest = data;
      while (rest.length > 0) rest = this.#framing === 'eom' ? this.#pushEom(rest) : this.#pushChunked(rest);
    } catch (err) {
      if (err instanceof FramingError) {
        this.#failed = err;
        this.#parts = [];
        this.#size = 0;
      }
      throw err;
    }
  }

  /** Bytes held for an incomplete message. */
  get buffered(): number {
    return this.#size;
  }

  #emit(): void {
    const message = this.#parts.length === 1 ? this.#parts[0]! : Buffer.concat(this.#parts, this.#size);
    this.#parts = [];
    this.#size = 0;
    this.onMessage(message);
  }

  #add(part: Buffer): void {
    if (part.length === 0) return;
    if (this.#size + part.length > this.#max) throw new FramingError('oversize', `message larger than ${this.#max} bytes refused`);
    this.#parts.push(part);
    this.#size += part.length;
  }

  /** Consumes bytes up to and including one delimiter (or all of them); returns what is left. */
  #pushEom(data: Buffer): Buffer {
    // The delimiter may straddle the previous part and this one: look back up to 5 bytes.
    const back = Math.min(this.#size, EOM_BYTES.length - 1);
    const tail = back > 0 ? this.#tail(back) : Buffer.alloc(0);
    const window = back > 0 ? Buffer.concat([tail, data]) : data;
    const at = window.indexOf(EOM_BYTES);
    if (at < 0) {
      // Keep the limit: the message so far (minus a possible partial delimiter) must fit.
      if (this.#size + data.length > this.#max + EOM_BYTES.length - 1) throw new FramingError('oversize', `message larger than ${this.#max} bytes refused`);
      this.#parts.push(data);
      this.#size += data.length;
      return Buffer.alloc(0);
    }
    // `at` counts from the start of the window; the message ends `back - at` bytes before this read (if positive).
    const endInData = at - back; // may be negative: the delimiter began in earlier parts
    if (endInData < 0) this.#truncate(-endInData);
    else this.#add(data.subarray(0, endInData));
    if (this.#size > this.#max) throw new FramingError('oversize', `message larger than ${this.#max} bytes refused`);
    this.#emit();
    return data.subarray(endInData + EOM_BYTES.length);
  }

  #tail(n: number): Buffer {
    const out: Buffer[] = [];
    let need = n;
    for (let i = this.#parts.length - 1; i >= 0 && need > 0; i--) {
      const p = this.#parts[i]!;
      const take = Math.min(need, p.length);
      out.unshift(p.subarray(p.length - take));
      need -= take;
    }
    return Buffer.concat(out);
  }

  /** Drops the last n buffered bytes (the start of a delimiter that straddled reads). */
  #truncate(n: number): void {
    let drop = n;
    while (drop > 0) {
      const last = this.#parts.pop()!;
      if (last.length > drop) {
        this.#parts.push(last.subarray(0, last.length - drop));
        this.#size -= drop;
        return;
      }
      this.#size -= last.length;
      drop -= last.length;
    }
  }

  #pushChunked(data: Buffer): Buffer {
    const state = this.#chunk;
    if (state.at === 'data') {
      const take = Math.min(state.remaining, data.length);
      this.#add(data.subarray(0, take));
      state.remaining -= take;
      if (state.remaining === 0) this.#chunk = { at: 'header', header: Buffer.alloc(0) };
      return data.subarray(take);
    }
    // Header: `\n#<digits>\n` (a chunk) or `\n##\n` (end of message). Read byte by byte into a small buffer.
    let i = 0;
    let header = state.header;
    while (i < data.length) {
      header = Buffer.concat([header, data.subarray(i, i + 1)]);
      i++;
      const verdict = parseHeader(header);
      if (verdict === 'more') continue;
      if (verdict === 'end') {
        if (this.#size === 0) throw new FramingError('malformed', 'end-of-chunks marker without a chunk');
        this.#chunk = { at: 'header', header: Buffer.alloc(0) };
        this.#emit();
        return data.subarray(i);
      }
      if (this.#size + verdict > this.#max) throw new FramingError('oversize', `message larger than ${this.#max} bytes refused (a chunk of ${verdict} bytes was announced)`);
      this.#chunk = { at: 'data', remaining: verdict };
      return data.subarray(i);
    }
    this.#chunk = { at: 'header', header };
    return Buffer.alloc(0);
  }
}

/** 'more' (incomplete), 'end' (`\n##\n`), or the chunk size; throws on anything malformed. */
function parseHeader(h: Buffer): 'more' | 'end' | number {
  const bad = (): never => {
    throw new FramingError('malformed', `bad chunk header ${JSON.stringify(h.toString('latin1').slice(0, MAX_HEADER_BYTES))}`);
  };
  if (h[0] !== 0x0a) return bad();
  if (h.length === 1) return 'more';
  if (h[1] !== 0x23) return bad();
  if (h.length === 2) return 'more';
  if (h[2] === 0x23) {
    if (h.length === 3) return 'more';
    return h[3] === 0x0a && h.length === 4 ? 'end' : bad();
  }
  const last = h[h.length - 1]!;
  if (last === 0x0a) {
    const digits = h.subarray(2, h.length - 1).toString('latin1');
    if (!/^[1-9][0-9]{0,9}$/.test(digits)) return bad();
    const size = Number(digits);
    return size > MAX_CHUNK_SIZE ? bad() : size;
  }
  if (last < 0x30 || last > 0x39 || h.length >= MAX_HEADER_BYTES) return bad();
  if (h[2] === 0x30) return bad(); // no leading zero
  return 'more';
}
