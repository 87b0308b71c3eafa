//! Reads a JWT's `exp` without verifying it: the client only needs to know
//! when to refresh. The server is the one that checks signatures.

/** The token's `exp` in Unix seconds, or `undefined` if it has none or is not a JWT. */
export function tokenExpiry(token: string): number | undefined {
  const parts = token.split(".");
  if (parts.length !== 3) return undefined;
  try {
    const b64 = parts[1].replace(/-/g, "+").replace(/_/g, "/");
    const padded = b64 + "=".repeat((4 - (b64.length % 4)) % 4);
    const claims: unknown = JSON.parse(atob(padded));
    if (claims && typeof claims === "object" && "exp" in claims) {
      const exp = (claims as { exp: unknown }).exp;
      if (typeof exp === "number" && Number.isFinite(exp)) return exp;
    }
  } catch {
    // Not base64 or not JSON: treat as a token without expiry.
  }
  return undefined;
}
