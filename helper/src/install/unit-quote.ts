/**
 * One word of a systemd unit setting, quoted so systemd reads it back unchanged
 * (systemd.syntax(7), systemd.service(5)): `%` starts a specifier everywhere, so it is doubled;
 * in a command's arguments (not its executable, checked with systemd-analyze verify) `$` starts a
 * variable, so it is doubled too; a word with anything but a plain path's characters goes in
 * double quotes, with `\` and `"` escaped. Control characters never get here (checkedPath
 * refuses them).
 */
export function unitWord(word: string, context: 'executable' | 'argument' | 'path'): string {
  let text = word.replace(/%/g, '%%');
  if (context === 'argument') text = text.replace(/\$/g, '$$$$');
  if (/^[A-Za-z0-9/_.,:+=@%$-]+$/.test(text)) return text;
  return `"${text.replace(/\\/g, '\\\\').replace(/"/g, '\\"')}"`;
}
