import { createPrivateKey, randomBytes, sign, X509Certificate, type KeyObject } from "node:crypto";
import { readFile } from "node:fs/promises";
import { BlosmError } from "../lib/errors.ts";

export type RegistryAction = "pull" | "push";
export type RepositoryAccess = { repository: string; actions: RegistryAction[] };

/**
 * Mints the bearer tokens of distribution's token auth (docs: "Token Authentication Implementation"): an ES256
 * JWT naming one repository and its allowed actions, short-lived, signed by a key whose certificate the
 * registry trusts. The certificate rides in the `x5c` header, which the registry checks against its bundle.
 * A token is the whole credential: it is handed to one engine for one push or pull and never logged.
 */
export class RegistryTokenIssuer {
  private constructor(
    private readonly key: KeyObject,
    private readonly certDer: string,
    readonly issuer: string,
    readonly service: string,
  ) {}

  static async load(opts: { keyFile: string; certFile: string; issuer: string; service: string }): Promise<RegistryTokenIssuer> {
    const read = (f: string) => readFile(f).catch((e: Error) => {
      throw new BlosmError(`cannot read ${f}: ${e.message}`);
    });
    const [keyPem, certPem] = await Promise.all([read(opts.keyFile), read(opts.certFile)]);
    const key = createPrivateKey(keyPem);
    if (key.asymmetricKeyType !== "ec" || key.asymmetricKeyDetails?.namedCurve !== "prime256v1") {
      throw new BlosmError(`${opts.keyFile}: the token key must be EC P-256 (ES256)`);
    }
    const cert = new X509Certificate(certPem);
    if (!cert.checkPrivateKey(key)) throw new BlosmError(`${opts.certFile} does not belong to the key in ${opts.keyFile}`);
    return new RegistryTokenIssuer(key, cert.raw.toString("base64"), opts.issuer, opts.service);
  }

  /**
   * A token for `repository` (the path inside the registry, without host) with `actions`, valid `ttlS` seconds;
   * `also`: more repositories in the same token (a blob mount needs pull on the one it mounts from).
   */
  mint(opts: { subject: string; repository: string; actions: RegistryAction[]; ttlS: number; now?: number; also?: RepositoryAccess[] }): { token: string; expiresAt: number } {
    const now = Math.floor((opts.now ?? Date.now()) / 1000);
    const expiresAt = now + opts.ttlS;
    const header = { typ: "JWT", alg: "ES256", x5c: [this.certDer] };
    const claims = {
      iss: this.issuer, sub: opts.subject, aud: this.service, iat: now, nbf: now - 5, exp: expiresAt,
      jti: randomBytes(16).toString("hex"),
      access: [{ repository: opts.repository, actions: opts.actions }, ...(opts.also ?? [])].map((a) => ({ type: "repository", name: a.repository, actions: a.actions })),
    };
    const signingInput = `${b64url(JSON.stringify(header))}.${b64url(JSON.stringify(claims))}`;
    // JOSE wants r||s (IEEE P1363), not DER.
    const signature = sign("sha256", Buffer.from(signingInput), { key: this.key, dsaEncoding: "ieee-p1363" });
    return { token: `${signingInput}.${signature.toString("base64url")}`, expiresAt };
  }
}

const b64url = (s: string) => Buffer.from(s).toString("base64url");
