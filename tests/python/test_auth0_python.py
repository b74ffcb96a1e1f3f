"""auth0-python (PyPI `auth0-python`, the version in requirements.txt) against a real
`tessera serve`, changing only the domain: `GetToken` redeems a code of the hosted login,
and `TokenVerifier` with `AsymmetricSignatureVerifier` checks the ID token against the
published JWKS, as an application built on Auth0's Python SDK does.

`AsymmetricSignatureVerifier` reads every key of the JWKS as an RSA key: it works only
because Tessera publishes what Auth0 does by default (RS256 keys) while no API signs
with another algorithm.
"""

import base64
import json
import secrets
import unittest

import requests
from auth0.authentication import GetToken
from auth0.authentication.token_verifier import (
    AsymmetricSignatureVerifier,
    TokenValidationError,
    TokenVerifier,
)

from tessera import Server, cli, sign_in

CALLBACK = "http://localhost:3000/callback"
EMAIL = "python@example.com"
PASSWORD = "a long python passphrase 7"


def tenant(database_url: str) -> dict:
    app = cli(database_url, "apps", "create", "--name", "Python app", "--type", "regular",
              "--callbacks", CALLBACK)
    cli(database_url, "users", "create", "--email", EMAIL, "--password-stdin", stdin=PASSWORD + "\n")
    return {"client_id": app["client_id"], "client_secret": app["client_secret"]}


class TokenVerifierAgainstTessera(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.server = Server(tenant).__enter__()
        cls.client_id = cls.server.tenant["client_id"]
        cls.client_secret = cls.server.tenant["client_secret"]

    @classmethod
    def tearDownClass(cls):
        cls.server.__exit__(None, None, None)

    def log_in(self, nonce: str) -> dict:
        """Signs in through the hosted page and redeems the code with auth0-python, as a
        regular web application does (authenticated with its secret)."""
        state = secrets.token_urlsafe(12)
        back = sign_in(self.server.base_url, {
            "response_type": "code",
            "client_id": self.client_id,
            "redirect_uri": CALLBACK,
            "scope": "openid profile email",
            "state": state,
            "nonce": nonce,
        }, EMAIL, PASSWORD)
        self.assertEqual(back["state"], state)
        get_token = GetToken(self.server.host, self.client_id, client_secret=self.client_secret,
                             protocol="http")
        tokens = get_token.authorization_code(back["code"], CALLBACK)
        self.assertEqual(tokens["token_type"], "Bearer")
        return tokens

    def verifier(self) -> TokenVerifier:
        keys = AsymmetricSignatureVerifier(f"{self.server.base_url}/.well-known/jwks.json")
        return TokenVerifier(signature_verifier=keys, issuer=self.server.issuer, audience=self.client_id)

    def test_the_id_token_verifies_with_the_published_keys(self):
        nonce = secrets.token_urlsafe(16)
        tokens = self.log_in(nonce)
        claims = self.verifier().verify(tokens["id_token"], nonce=nonce)
        self.assertEqual(claims["email"], EMAIL)
        self.assertEqual(claims["iss"], self.server.issuer)
        self.assertEqual(claims["aud"], self.client_id)
        self.assertTrue(claims["sub"].startswith("auth0|"), claims["sub"])

    def test_a_wrong_nonce_or_a_tampered_token_is_refused(self):
        nonce = secrets.token_urlsafe(16)
        id_token = self.log_in(nonce)["id_token"]
        with self.assertRaisesRegex(TokenValidationError, "Nonce"):
            self.verifier().verify(id_token, nonce="another nonce")
        header, payload, signature = id_token.split(".")
        claims = json.loads(_b64decode(payload))
        claims["email"] = "attacker@example.com"
        forged = ".".join([header, _b64encode(json.dumps(claims).encode()), signature])
        with self.assertRaisesRegex(TokenValidationError, "signature"):
            self.verifier().verify(forged, nonce=nonce)

    def test_the_jwks_holds_only_keys_the_sdk_can_read(self):
        jwks = requests.get(f"{self.server.base_url}/.well-known/jwks.json", timeout=10).json()
        self.assertTrue(jwks["keys"])
        for key in jwks["keys"]:
            self.assertEqual((key["kty"], key["alg"]), ("RSA", "RS256"))
            self.assertEqual(len(key["x5c"]), 1)


def _b64decode(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def _b64encode(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


if __name__ == "__main__":
    unittest.main()
