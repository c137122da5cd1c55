/** The signed user token (a JWT the app's backend signs, `sub` = user id). The SDK never
 * verifies it — the services do — it only reads `sub` so calls name the token's user. */
export type TokenSource = string | (() => string | Promise<string>);

export async function resolveToken(source: TokenSource | undefined): Promise<string | undefined> {
  if (source === undefined) return undefined;
  const token = typeof source === "function" ? await source() : source;
  return token || undefined;
}

/** The `sub` claim of a JWT, or undefined when the token is not a readable JWT. */
export function subjectOf(jwt: string): string | undefined {
  const parts = jwt.split(".");
  if (parts.length !== 3) return undefined;
  try {
    const claims: unknown = JSON.parse(base64UrlDecode(parts[1]));
    if (claims && typeof claims === "object" && typeof (claims as { sub?: unknown }).sub === "string") {
      return (claims as { sub: string }).sub || undefined;
    }
  } catch {
    // Not base64url JSON: not a JWT we can read; the caller asks for an explicit userId.
  }
  return undefined;
}

function base64UrlDecode(text: string): string {
  const base64 = text.replace(/-/g, "+").replace(/_/g, "/").padEnd(Math.ceil(text.length / 4) * 4, "=");
  const binary = atob(base64);
  const bytes = Uint8Array.from(binary, (c) => c.charCodeAt(0));
  return new TextDecoder().decode(bytes);
}
