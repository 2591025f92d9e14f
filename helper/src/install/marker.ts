/**
 * Every file install generates carries this phrase (in a comment), so uninstall removes only
 * files install wrote and keeps anything else that happens to have the same name.
 */
export const GENERATED_MARKER = 'Written by `xkvm-helper install`';

export function isGenerated(text: string): boolean {
  return text.includes(GENERATED_MARKER);
}
