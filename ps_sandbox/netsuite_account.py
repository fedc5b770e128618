"""The sandbox NetSuite account's login configuration: what a real account holds in its
integration record, its OAuth 2.0 Client Credentials (M2M) Setup and its access tokens.

Every secret here is a sandbox-only value, published on purpose (like ``DEFAULT_CREDENTIALS``)
so the embedded local environment logs in out of the box: the RSA key pair of the M2M
certificate mapping and the TBA consumer/token secrets exist nowhere but in this file and
protect nothing but the local emulator. A real tenant's private key and secrets come from
environment variables (``NETSUITE_*``, see the README) and never appear in code.

- OAuth 2.0 client credentials (M2M): the integration record's client id plus a certificate
  mapping (the certificate id NetSuite shows after the public part of the certificate is
  uploaded), whose private key signs the client assertion. NetSuite help, "OAuth 2.0 Client
  Credentials Setup" (section_162686838198) and "The Request Token Structure"
  (section_162790605110).
- Token-Based Authentication: the integration record's consumer key/secret and an access
  token's id/secret for a user and role, signed per RFC 5849 with HMAC-SHA256 and the account id
  as ``realm``. NetSuite help, "The Signature for Web Services and RESTlets"
  (section_1534941088) and "The Authorization Headers" (section_1534941295).
"""

from __future__ import annotations

ACCOUNT_ID = "1234567"
CLIENT_ID = "sandbox-ns-client"
CERTIFICATE_ID = "sandbox-ns-certificate"
# Sandbox-only RSA 3072 key of the M2M certificate mapping: published on purpose.
PRIVATE_KEY_PEM = """-----BEGIN PRIVATE KEY-----
MIIG/AIBADANBgkqhkiG9w0BAQEFAASCBuYwggbiAgEAAoIBgQDocTFB5In/OfJI
EeY/AvP2MyBR3DXciGoe7S8BXOIcwcyqvPslUGyeDNYrgIbYW9bUnfwExetqo0wR
/lN81eybTasM11oIqbXtswWQOlDfCr87Ujl2OW/ZkfyMCUn82iINBRCJHPJ/+sJB
ozffWCEOhelF4IZzoK6rZaqoE2mC7tlmc0wN2cNubmFkgkXUID91Ke+vAsTc5m4F
wHOL9o0u0+IBd5jQwi9OlVlv7kClirk1UbxYDLlND+oDxdpDPYgnWU6cbd1tzoey
V2qznUyvrtj+d3ChSVKKAYYqm6GS5aOGHfynKgI6keV4wbshXUS0WEDKtz95Fzi5
8N6ZIeJyPBfDzfOkLRcJLYN1asCT4QN4gDhmCMGmKf/azYIZzxAMndHmvEnNMQOg
bYiUT47vs9AtEfx34j2EpCCXDJ7zsWVBs+IqisTTb0tAuneekJ3Hpggs5jW8dRgR
0ZjfSi3t8Fvk0js8/RYaAm2f2RnEPnGjq1IPlPNV5wGKs+oAfy0CAwEAAQKCAYBZ
x0aQPdZzJw2Geqtk0R4rjMnB9H01Rdc/RLswGpEXLF+B3uZeHjclwK2ENetfa/GJ
Q9AQg+WO1a3PEV1rzTDLN2+G0TLsP6iOO+Q9NdkAnSUJo5OgL0UdUv6pk/jo2dPn
FXqyiuS7O76GHaW59U8nTd+w5qznwjtU5jrJGl5ZfSmpIYVRoDeU0rt5V7vi1+XK
ujziav5gl/wM6q12dO9JE/uqN2hl0Wr2PkdCLVL43aD1kDFgDOIResEXXfcUm5Hb
kgAUHSmlpJP82v9vYR5vxDgKSbB8pjoNbaA8bY++bV5OUOCirVNc4AHjgKz7zkn2
qPH9+N+Jn94uxAbKHFNSYQN5lmJGdpVvppLW8h1EhNPHpiN+sBHpEQRThBlGWXJ/
yZdJZb/tKpAZWEPz5XMJEvd42PP+BszccGWp107kshi/UQHUnBWV6eJrAOrsAuEm
THXwEkKukb5u/IjyDafpSEInQNfsFuLmbnWq93ZlFvHD5eHk60GQHEMfxXnxtF0C
gcEA/eDiP1TNKPNjwHy1RIqIUASMRcTdN+Y3VVyNDgUwCeyFtqcLaS9/BIy5Cw6Z
aNQSRmyu33/+iRWc5MfPSkCppkKAPBF6RJYq+xnR/MgEXKgCmW0OAYc3I1BwhV+x
ffrCmp28oSmhz1Af38Hij2L/vjXXVK4mqgJ8/TtkfnDLxoK7QzbPBAMdn7HbkuEK
aNuXML0Sy7ZJ+HAVoU+hpCJBWa9QVAM/bxWZA7BjldY0Qfi6+Dov9HF2wbUUbYz2
ItMfAoHBAOpic1INOSOcblrH4oFiDs8wX+6IqHwKAqn5Fue3ivhmtS45orIr7RYB
8yQjsFCMIdgNCeegf5rof8gnCBDITuhZh2dGEWtkrgmQ9nWfUylgYcNLUuDS98uB
Tns35w5OM1xLzRzoFz1gHQFh4OXPrR0QIp2LyN6QLl4xyafgCEBgqP0bA5RsOUJz
QFG7ttiVy0M5yEIq3eRRQRg32wduF1Q5fG+Yoe1ozGSihT8BDV7H8ezzKb5d96pG
OK5DUtGQMwKBwFvNP8KK1YzjRcTK03kvZs8YdeicoSmfc47IYrEZKx/LiSZdDQFC
DXoFsLvQ0aRYWytgDXQAAnhreko3/jrpWu8lyNzvrPi0HGKkGYyAfyNKFXaJOrFO
xZ9dbPKtga7+R/RE6XqVZU9jt8Lfhx82Oyf6rByQxKZhM/UVzubxvp3PlAtf/EeF
IOcoFy/rdCoqjWcwV2WWSvUtAoVMGDUTtfHKNQ/MBNoUQzpURA5gYJEicelkkQah
KMIuym46tJ4vHQKBwADWPScr2Ophops8X3iqyva+a3lEj6Vxu7SzqPtG0n40j60M
k6IjOgN8GkwkvHptJanJ0iE7l3kMH3itev/kVzPJLgyWWXWStHRgSiD9YqShLXgv
Cqq21h+p5IfYGUEZ0mEf/CmAQqT7dN8OZGktpqaV6im52AvDZAb+EoRA7oacUb4l
nIupH0M3eiFQlESNtF4XFLn3wTcRezQE7wlFwVuRoPodB2b7ms85LVSeQlf2SszX
yWxelYXMHmOw5djNtQKBwE6V+Vxw3yJYXo/3eKy6a1hNxohw/pO1U+NTjHt0Cfil
r9TYrzl/DkzyCOia2WI352lQ3W3shGZa646mH4jBV/q2MEUGUcBDV5D4Qf7mgJ1H
jbVOTLrJcqE6DjO5I874bRkoux4DT19Sd/KvUj/XFnP3oj4dsdJH4+52RL4jvKvG
MMILfgO39Y9KNhj+meNANFlauxI9lqdHkRy8mS69/i9g8H1+huURNSt1ogKi5mef
k2qFZvMHzwxWOyBQuYpiHA==
-----END PRIVATE KEY-----
"""
SCOPES = ("rest_webservices", "restlets", "suite_analytics")

# The client's side of an M2M login, as the local resources and tests pass it to NetSuiteClient.
M2M_CREDENTIALS: dict[str, str] = {
    "account_id": ACCOUNT_ID,
    "auth_mode": "m2m",
    "client_id": CLIENT_ID,
    "certificate_id": CERTIFICATE_ID,
    "private_key_pem": PRIVATE_KEY_PEM,
}

# The client's side of a TBA login (integration record consumer + access token), sandbox-only.
TBA_CREDENTIALS: dict[str, str] = {
    "account_id": ACCOUNT_ID,
    "auth_mode": "tba",
    "consumer_key": "sandbox-ns-consumer-key",
    "consumer_secret": "sandbox-ns-consumer-secret",
    "token_id": "sandbox-ns-token-id",
    "token_secret": "sandbox-ns-token-secret",
}


def _public_key_pem(private_key_pem: str) -> str:
    from cryptography.hazmat.primitives import serialization

    key = serialization.load_pem_private_key(private_key_pem.encode(), password=None)
    return key.public_key().public_bytes(serialization.Encoding.PEM,
                                         serialization.PublicFormat.SubjectPublicKeyInfo).decode()


# The public part, as uploaded with the certificate to the M2M mapping.
PUBLIC_KEY_PEM = _public_key_pem(PRIVATE_KEY_PEM)
