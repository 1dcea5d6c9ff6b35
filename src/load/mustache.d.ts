// The part of mustache.js (4.2) that Plumb uses: its parser. Rendering is ours (src/load/template.ts).
declare module 'mustache' {
  /** [type, value, start, end, children?, closeStart?]; offsets into the template text. */
  export type TemplateToken = [type: string, value: string, start: number, end: number, children?: TemplateToken[], closeStart?: number];
  export interface TemplateCache {
    set(key: string, value: TemplateToken[]): void;
    get(key: string): TemplateToken[] | undefined;
    clear(): void;
  }
  export class Writer {
    templateCache: TemplateCache | undefined;
    parse(template: string, tags?: [string, string]): TemplateToken[];
  }
  const mustache: { Writer: typeof Writer; version: string };
  export default mustache;
}
