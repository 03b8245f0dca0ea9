"""French for why a security key or passkey was refused at registration (idp.mfa.attestation)."""

from __future__ import annotations

_REFUSED = "Cette clé de sécurité ou clé d'accès n'est pas acceptée ici : "

MESSAGES: dict[str, str] = {
    "This security key or passkey is not accepted here: its model is not on this service's "
    "list of allowed authenticators.": (
        _REFUSED + "son modèle ne figure pas dans la liste des authentificateurs autorisés par "
        "ce service."
    ),
    "This security key or passkey is not accepted here: it did not prove which model it is, "
    "and this service only accepts certified models.": (
        _REFUSED + "elle n'a pas prouvé de quel modèle il s'agit, et ce service n'accepte que "
        "des modèles certifiés."
    ),
    "This security key or passkey is not accepted here: its model is not certified by the FIDO "
    "Alliance, or its certificate could not be verified.": (
        _REFUSED + "son modèle n'est pas certifié par la FIDO Alliance, ou son certificat n'a "
        "pas pu être vérifié."
    ),
    "This security key or passkey is not accepted here: the service cannot check security keys "
    "at the moment. Contact the service's support.": (
        _REFUSED + "le service ne peut pas vérifier les clés de sécurité pour le moment. "
        "Contactez l'assistance du service."
    ),
    "This security key or passkey is not accepted here: the FIDO Alliance revoked its model's "
    "certification.": _REFUSED + "la FIDO Alliance a révoqué la certification de son modèle.",
    "This security key or passkey is not accepted here: its model can be used without verifying "
    "its owner.": _REFUSED + "son modèle peut être utilisé sans vérifier son propriétaire.",
    "This security key or passkey is not accepted here: its maker's attestation key was "
    "compromised.": _REFUSED + "la clé d'attestation de son fabricant a été compromise.",
    "This security key or passkey is not accepted here: keys can be extracted from its model.": (
        _REFUSED + "des clés peuvent être extraites de son modèle."
    ),
}
