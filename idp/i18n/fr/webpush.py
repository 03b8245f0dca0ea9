"""French for the web authenticator (mfa_push_app.html) and its push notifications
(idp/mfa/webpush.py)."""

from __future__ import annotations

MESSAGES: dict[str, str] = {
    "Authenticator": "Authentificateur",
    "Paste the enrolment link the sign-in page shows (it starts with idp-push://), then allow "
    "notifications.": (
        "Collez le lien d'inscription affiché par la page de connexion (il commence par "
        "idp-push://), puis autorisez les notifications."
    ),
    "Use this device for sign-in requests": "Utiliser cet appareil pour les demandes de connexion",
    "Sign-in requests": "Demandes de connexion",
    "No sign-in is waiting.": "Aucune connexion n'est en attente.",
    "Pick the number shown on the sign-in page:": (
        "Choisissez le nombre affiché sur la page de connexion :"
    ),
    "This browser cannot receive sign-in requests (it needs service workers, push and "
    "WebCrypto).": (
        "Ce navigateur ne peut pas recevoir de demandes de connexion (il lui faut les service "
        "workers, les notifications push et WebCrypto)."
    ),
    "Notifications are blocked: allow them for this site and try again.": (
        "Les notifications sont bloquées : autorisez-les pour ce site et réessayez."
    ),
    "This link is for another server. Open the authenticator on the server that showed it.": (
        "Ce lien est destiné à un autre serveur. Ouvrez l'authentificateur sur le serveur qui "
        "l'a affiché."
    ),
    "That is not an enrolment link.": "Ce n'est pas un lien d'inscription.",
    "This device is enrolled. Sign-in requests arrive as notifications.": (
        "Cet appareil est inscrit. Les demandes de connexion arrivent en notifications."
    ),
    "Approved.": "Approuvée.",
    "Denied.": "Refusée.",
    "That number did not match: the sign-in was refused.": (
        "Ce nombre ne correspondait pas : la connexion a été refusée."
    ),
    "Sign-in request": "Demande de connexion",
    "Sign in to {app} from {ip}? Open to pick the number shown on the sign-in page.": (
        "Connexion à {app} depuis {ip} ? Ouvrez pour choisir le nombre affiché sur la page de "
        "connexion."
    ),
    "an application": "une application",
    "QR code of the web authenticator": "QR code de l'authentificateur web",
    "No authenticator app? Use the phone's browser": (
        "Pas d'application d'authentification ? Utilisez le navigateur du téléphone"
    ),
    "Scan this code with the phone's camera: it opens the web authenticator with the link "
    "filled in. Allow notifications when it asks.": (
        "Scannez ce code avec l'appareil photo du téléphone : il ouvre l'authentificateur web "
        "avec le lien déjà rempli. Autorisez les notifications quand il le demande."
    ),
    "Open the web authenticator": "Ouvrir l'authentificateur web",
}
