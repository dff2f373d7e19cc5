/** The few assertions the tests need (jsr:@std/assert cannot be fetched here; only npm: imports work). */

import { isDeepStrictEqual } from "node:util";

export class AssertionError extends Error {}

export function assert(condition: unknown, message = "assertion failed"): asserts condition {
  if (!condition) throw new AssertionError(message);
}

export function assertEquals<T>(actual: T, expected: T, context = ""): void {
  if (!isDeepStrictEqual(actual, expected)) {
    const show = (value: unknown) => Deno.inspect(value, { depth: 6, iterableLimit: 200 });
    throw new AssertionError(`${context ? context + ": " : ""}expected ${show(expected)}, got ${show(actual)}`);
  }
}

export async function assertRejects<E extends Error>(
  run: () => Promise<unknown>,
  // deno-lint-ignore no-explicit-any -- an error class with any constructor signature
  errorClass: new (...args: any[]) => E,
  message?: string,
  context = "",
): Promise<E> {
  try {
    await run();
  } catch (error) {
    if (!(error instanceof errorClass)) {
      throw new AssertionError(`${context}: expected ${errorClass.name}, got ${error}`);
    }
    if (message !== undefined && error.message !== message) {
      throw new AssertionError(`${context}: expected message ${JSON.stringify(message)}, got ${error.message}`);
    }
    return error;
  }
  throw new AssertionError(`${context}: expected ${errorClass.name}, nothing was thrown`);
}
