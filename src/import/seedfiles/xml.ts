/**
 * A small XML reader for token files (PSKC): elements, attributes, text, CDATA, comments and
 * processing instructions. Namespace prefixes are dropped (elements are matched by local name),
 * which is all a PSKC reader needs. A document type declaration is refused, so no entity is
 * ever expanded and no external resource is referenced (XXE, billion laughs).
 */
export interface XmlElement {
  name: string;
  attrs: Record<string, string>;
  children: XmlElement[];
  text: string;
}

export class XmlError extends Error {}

const ENTITIES: Record<string, string> = { lt: '<', gt: '>', amp: '&', quot: '"', apos: "'" };

function decodeEntities(s: string, at: number): string {
  return s.replace(/&(#x[0-9a-fA-F]+|#\d+|[a-z]+);?/g, (m, e: string) => {
    if (!m.endsWith(';')) throw new XmlError(`bad character reference near offset ${at}`);
    if (e.startsWith('#x')) return String.fromCodePoint(Number.parseInt(e.slice(2), 16));
    if (e.startsWith('#')) return String.fromCodePoint(Number(e.slice(1)));
    const v = ENTITIES[e];
    if (v === undefined) throw new XmlError(`unknown entity &${e}; near offset ${at}`);
    return v;
  });
}

const localName = (qname: string): string => qname.slice(qname.indexOf(':') + 1);

/** Parses a document into its root element; throws XmlError with where it stopped. */
export function parseXml(src: string): XmlElement {
  let i = 0;
  const stack: XmlElement[] = [{ name: '#document', attrs: {}, children: [], text: '' }];
  const top = () => stack[stack.length - 1]!;
  while (i < src.length) {
    const lt = src.indexOf('<', i);
    const textEnd = lt < 0 ? src.length : lt;
    if (textEnd > i) {
      const t = src.slice(i, textEnd);
      if (stack.length === 1) {
        if (t.trim() !== '') throw new XmlError(`text outside the root element at offset ${i}`);
      } else top().text += decodeEntities(t, i);
    }
    if (lt < 0) break;
    i = lt;
    if (src.startsWith('<!--', i)) {
      const end = src.indexOf('-->', i + 4);
      if (end < 0) throw new XmlError('unterminated comment');
      i = end + 3;
    } else if (src.startsWith('<![CDATA[', i)) {
      const end = src.indexOf(']]>', i + 9);
      if (end < 0 || stack.length === 1) throw new XmlError('bad CDATA section');
      top().text += src.slice(i + 9, end);
      i = end + 3;
    } else if (src.startsWith('<?', i)) {
      const end = src.indexOf('?>', i + 2);
      if (end < 0) throw new XmlError('unterminated processing instruction');
      i = end + 2;
    } else if (src.startsWith('<!', i)) {
      throw new XmlError('document type declarations are not accepted');
    } else if (src.startsWith('</', i)) {
      const end = src.indexOf('>', i);
      if (end < 0) throw new XmlError('unterminated end tag');
      const name = localName(src.slice(i + 2, end).trim());
      const open = stack.pop()!;
      if (stack.length === 0 || open.name !== name) throw new XmlError(`end tag </${name}> does not match <${open.name}> at offset ${i}`);
      i = end + 1;
    } else {
      const m = /^<([A-Za-z_][\w.:-]*)((?:\s+[A-Za-z_][\w.:-]*\s*=\s*(?:"[^"<]*"|'[^'<]*'))*)\s*(\/?)>/.exec(src.slice(i, i + 8192));
      if (!m) throw new XmlError(`malformed tag at offset ${i}`);
      const el: XmlElement = { name: localName(m[1]!), attrs: {}, children: [], text: '' };
      for (const a of m[2]!.matchAll(/([A-Za-z_][\w.:-]*)\s*=\s*(?:"([^"]*)"|'([^']*)')/g)) {
        el.attrs[localName(a[1]!)] = decodeEntities(a[2] ?? a[3] ?? '', i);
      }
      if (stack.length === 1 && stack[0]!.children.length > 0) throw new XmlError('more than one root element');
      top().children.push(el);
      if (m[3] !== '/') stack.push(el);
      i += m[0].length;
    }
  }
  if (stack.length !== 1) throw new XmlError(`unclosed element <${top().name}>`);
  const root = stack[0]!.children[0];
  if (!root) throw new XmlError('no root element');
  return root;
}

/** The first child with this local name. */
export function child(el: XmlElement | undefined, name: string): XmlElement | undefined {
  return el?.children.find((c) => c.name === name);
}

/** Every child with this local name. */
export function children(el: XmlElement | undefined, name: string): XmlElement[] {
  return el?.children.filter((c) => c.name === name) ?? [];
}

/** The trimmed text of the element reached by following `path` (local names), or undefined. */
export function textAt(el: XmlElement | undefined, ...path: string[]): string | undefined {
  let cur = el;
  for (const p of path) cur = child(cur, p);
  return cur === undefined ? undefined : cur.text.trim();
}
