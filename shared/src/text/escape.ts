/**
 * Make text from qemu, a guest or a peer safe to print on a terminal or in a log line:
 * control characters (C0, DEL, C1, including ESC) become visible escapes, so nothing can move
 * the cursor, change the title or inject a fake log line.
 */
export function escapeForTerminal(text: string): string {
  // eslint-disable-next-line no-control-regex
  return text.replace(/[\u0000-\u001f\u007f-\u009f\u2028\u2029]/g, (ch) => {
    switch (ch) {
      case '\n': return '\\n';
      case '\r': return '\\r';
      case '\t': return '\\t';
      case '\u001b': return '\\e';
      default: return `\\x${ch.charCodeAt(0).toString(16).padStart(2, '0')}`;
    }
  });
}
