/**
 * The shape every boundary's error family shares (client, protocol, policy, user database,
 * network, install): a stable code, a message for a person, and the original cause kept for
 * logs. Each family subclasses it with its own codes and name.
 */
export class CodedError<Code extends string> extends Error {
  readonly code: Code;

  constructor(code: Code, message: string, options: { cause?: unknown } = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.code = code;
  }
}
