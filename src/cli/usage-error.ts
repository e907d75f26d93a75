/** An invalid command line. The CLI prints the usage and the message, and exits with code 2. */
export class UsageError extends Error {
  override readonly name = "UsageError";
}
