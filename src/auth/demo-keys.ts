/**
 * DEMO ONLY — never use in production.
 *
 * The private half of the demo signing key. It is published in this repository, so anyone can
 * mint tokens that the demo issuer accepts. It exists so that `smart-authz serve` works out of the
 * box and `smart-authz token` can mint tokens for trying it. A production config must not list the
 * demo issuer (`https://demo.smart-authz.invalid`); `serve` logs a warning whenever it does.
 */
import type { JWK } from "jose";

/** DEMO ONLY — never use in production: this private key is public knowledge. */
export const DEMO_PRIVATE_JWK: JWK = {
  kty: "EC",
  crv: "P-256",
  x: "uDLFjrr19r9IJz4rBC1MYSCu1vUPSvSWgWV19cCKEK8",
  y: "E8jKakmmqzaELZb09dNNVm5fmZoTsB8E8flba9ChSl0",
  d: "xDRAMNYlJSpS9JHeB91PGTOOB15IB37rI-C4MMEJlV0",
  kid: "demo-m5bShnQT2lqOtax_",
  alg: "ES256",
  use: "sig",
};
