// A message's class (its lane): the class list, their order of precedence in the scheduler, and
// how a message gets its class. Every other module imports these; none spells the list again.
// Pure.

/** In scheduling order: otp is claimed and dispatched first, bulk last. */
export const MESSAGE_CLASSES = ['otp', 'transactional', 'bulk'] as const;
export type MessageClass = (typeof MESSAGE_CLASSES)[number];

/** The class of mail that names none (and of the DSNs the relay writes). */
export const DEFAULT_CLASS: MessageClass = 'transactional';

/** The list as a user reads it in an error message: "otp, transactional or bulk". */
export const MESSAGE_CLASSES_TEXT = `${MESSAGE_CLASSES.slice(0, -1).join(', ')} or ${MESSAGE_CLASSES[MESSAGE_CLASSES.length - 1]}`;

export function isMessageClass(value: string): value is MessageClass {
  return (MESSAGE_CLASSES as readonly string[]).includes(value);
}

/**
 * One value per class (counters, flags), built from the list so no module spells it again. Property
 * by property, not Object.fromEntries of mapped pairs: the scheduler makes one for each lane it
 * opens, about one a message (four arrays each that way), and every record gets the same shape.
 */
export function classRecord<T>(make: () => T): Record<MessageClass, T> {
  const record = {} as Record<MessageClass, T>;
  for (const c of MESSAGE_CLASSES) record[c] = make();
  return record;
}

/** The queue's lane number of a class (0 otp, 1 transactional, 2 bulk): claims scan lane by lane. */
export function laneOf(cls: MessageClass): number {
  return MESSAGE_CLASSES.indexOf(cls);
}

/**
 * How a submitted message gets its class: the X-Mailfleet-Class header, then the credential's
 * default class, then DEFAULT_CLASS. Both come only from authenticated submission: an
 * unauthenticated client cannot jump the otp lane.
 */
export function classOfMessage(input: { authenticated: boolean; header: MessageClass | undefined; credentialDefault: MessageClass | undefined }): MessageClass {
  if (!input.authenticated) return DEFAULT_CLASS;
  return input.header ?? input.credentialDefault ?? DEFAULT_CLASS;
}
