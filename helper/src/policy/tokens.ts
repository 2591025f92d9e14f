import { syntaxError } from './errors.js';

/** One line with its comment removed: the words, and the directive text as written (trimmed). */
export interface LineWords {
  readonly words: readonly string[];
  readonly text: string;
}

// Every C0 control but tab, DEL, and C1 controls: none belongs in a policy file.
// eslint-disable-next-line no-control-regex
const CONTROL = /[\u0000-\u0008\u000a-\u001f\u007f-\u009f\u2028\u2029]/;

/**
 * Split one line into words. Words are separated by spaces and tabs; there is no quoting.
 * A `#` at the start of a line or after a space or tab starts a comment that runs to the end of
 * the line (a `#` inside a word is part of the word). A trailing carriage return (CRLF files)
 * is ignored; any other control character is an error.
 */
export function splitLine(raw: string, file: string, line: number): LineWords {
  const body = raw.endsWith('\r') ? raw.slice(0, -1) : raw;
  const bad = CONTROL.exec(body);
  if (bad !== null) {
    const code = bad[0].charCodeAt(0).toString(16).padStart(2, '0');
    throw syntaxError(file, line, `control character \\x${code} at column ${bad.index + 1}`,
      'printable text (words separated by spaces or tabs)');
  }
  const comment = /(^|[ \t])#/.exec(body);
  const text = (comment === null ? body : body.slice(0, comment.index)).trim();
  const words = text === '' ? [] : text.split(/[ \t]+/);
  return { words, text };
}
