"""Stores an IMAP password in a new Thunderbird profile, as Thunderbird itself would.

Usage: thunderbird_logins.py PROFILE_DIR HOST USER  (the password on stdin)

Makes the profile's key store (key4.db) with an empty primary password, using Thunderbird's
own NSS (Debian's is older than the one Thunderbird links), encrypts the user name and
password with it (PK11SDR_Encrypt, as the login manager does) and writes logins.json with
one login for imap://HOST, the origin and realm Thunderbird looks an IMAP password up by.
"""

import base64
import ctypes
import json
import sys
import time
import uuid

NSS_DIR = "/usr/lib/thunderbird"


class SECItem(ctypes.Structure):
    _fields_ = [("type", ctypes.c_uint), ("data", ctypes.c_void_p), ("len", ctypes.c_uint)]


def load_nss():
    # Dependencies first, so that libnss3 binds to Thunderbird's libnssutil3, not Debian's.
    ctypes.CDLL(f"{NSS_DIR}/libnssutil3.so", mode=ctypes.RTLD_GLOBAL)
    nss = ctypes.CDLL(f"{NSS_DIR}/libnss3.so")
    nss.NSS_InitReadWrite.argtypes = [ctypes.c_char_p]
    nss.PK11_GetInternalKeySlot.restype = ctypes.c_void_p
    nss.PK11_NeedUserInit.argtypes = [ctypes.c_void_p]
    nss.PK11_InitPin.argtypes = [ctypes.c_void_p, ctypes.c_char_p, ctypes.c_char_p]
    nss.PK11_CheckUserPassword.argtypes = [ctypes.c_void_p, ctypes.c_char_p]
    nss.PK11SDR_Encrypt.argtypes = [ctypes.POINTER(SECItem)] * 3 + [ctypes.c_void_p]
    nss.PK11_FreeSlot.argtypes = [ctypes.c_void_p]
    nss.SECITEM_ZfreeItem.argtypes = [ctypes.POINTER(SECItem), ctypes.c_int]
    return nss


def main():
    profile, host, user = sys.argv[1:4]
    password = sys.stdin.read()
    nss = load_nss()

    def check(status, what):
        if status != 0:
            sys.exit(f"{what} failed: NSS error {nss.PORT_GetError()}")

    def encrypt(text):
        raw = text.encode()
        buf = ctypes.create_string_buffer(raw, len(raw))
        data = SECItem(0, ctypes.cast(buf, ctypes.c_void_p), len(raw))
        out = SECItem(0, None, 0)
        # An empty key id: the store's default key, made on first use.
        no_key_id = SECItem(0, None, 0)
        check(
            nss.PK11SDR_Encrypt(ctypes.byref(no_key_id), ctypes.byref(data), ctypes.byref(out), None),
            "PK11SDR_Encrypt",
        )
        sealed = ctypes.string_at(out.data, out.len)
        nss.SECITEM_ZfreeItem(ctypes.byref(out), 0)
        return base64.b64encode(sealed).decode()

    check(nss.NSS_InitReadWrite(f"sql:{profile}".encode()), "NSS_InitReadWrite")
    slot = nss.PK11_GetInternalKeySlot()
    if nss.PK11_NeedUserInit(slot):
        check(nss.PK11_InitPin(slot, None, b""), "PK11_InitPin")
    check(nss.PK11_CheckUserPassword(slot, b""), "PK11_CheckUserPassword")
    origin = f"imap://{host}"
    now = int(time.time() * 1000)
    login = {
        "id": 1,
        "hostname": origin,
        "httpRealm": origin,
        "formSubmitURL": None,
        "usernameField": "",
        "passwordField": "",
        "encryptedUsername": encrypt(user),
        "encryptedPassword": encrypt(password),
        "guid": "{%s}" % uuid.uuid4(),
        "encType": 1,
        "timeCreated": now,
        "timeLastUsed": now,
        "timePasswordChanged": now,
        "timesUsed": 1,
    }
    nss.PK11_FreeSlot(slot)
    check(nss.NSS_Shutdown(), "NSS_Shutdown")
    logins = {
        "nextId": 2,
        "logins": [login],
        "potentiallyVulnerablePasswords": [],
        "dismissedBreachAlertsByLoginGUID": {},
        "version": 3,
    }
    with open(f"{profile}/logins.json", "w") as f:
        json.dump(logins, f)


main()
