/** A failed read of a live collection, with the HTTP status PostgREST answered (0: no answer). */
export class ReadError extends Error {
  constructor(
    message: string,
    readonly status: number,
  ) {
    super(message);
    this.name = "ReadError";
  }

  /** 401: the access token is expired or revoked and supabase-js could not refresh it; the session is over. */
  get sessionEnded(): boolean {
    return this.status === 401;
  }
}
