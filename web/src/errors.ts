// How the panels put a failed call into words.

import { Code, ConnectError } from "@connectrpc/connect";

/** gRPC's names of the status codes, by number. */
const CODE_NAMES = ["OK", "CANCELLED", "UNKNOWN", "INVALID_ARGUMENT", "DEADLINE_EXCEEDED", "NOT_FOUND",
  "ALREADY_EXISTS", "PERMISSION_DENIED", "RESOURCE_EXHAUSTED", "FAILED_PRECONDITION", "ABORTED",
  "OUT_OF_RANGE", "UNIMPLEMENTED", "INTERNAL", "UNAVAILABLE", "DATA_LOSS", "UNAUTHENTICATED"];

export function codeName(code: number): string {
  return CODE_NAMES[code] ?? `code ${code}`;
}

/** The error as shown in a panel; PERMISSION_DENIED as what it is. */
export function describe(error: unknown): string {
  if (error instanceof ConnectError && error.code === Code.PermissionDenied) return `not allowed: ${error.rawMessage}`;
  if (error instanceof ConnectError) {
    // A server that does not serve a service at all answers UNIMPLEMENTED with no message:
    // say that nothing more was said, rather than end on a bare colon.
    const message = error.rawMessage || "(no message from the server)";
    return `${error.code ? codeName(error.code) + ": " : ""}${message}`;
  }
  return error instanceof Error ? error.message : String(error);
}

/** The status code of a failed call; undefined for anything that is not a ConnectError. */
export function codeOf(error: unknown): Code | undefined {
  return error instanceof ConnectError ? error.code : undefined;
}

/** The server's own message of a failed call, without the code; "" for other errors. */
export function rawMessageOf(error: unknown): string {
  return error instanceof ConnectError ? error.rawMessage : "";
}
