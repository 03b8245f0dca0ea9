"""French messages of the error pages outside the login's own (see :mod:`idp.i18n`): logout,
SAML, upstream connections, the reasons a login ends without a code (``step.fail``, which the
device flow's page shows), and the HTTP errors werkzeug names (idp/__init__.py's handler)."""

MESSAGES: dict[str, str] = {
    # RP-initiated logout, SAML logout
    "Logout failed": "La déconnexion a échoué",
    "The id_token_hint is not valid.": "Le paramètre id_token_hint n'est pas valide.",
    "client_id does not match the id_token_hint.": (
        "Le paramètre client_id ne correspond pas à id_token_hint."
    ),
    "A post_logout_redirect_uri needs a valid id_token_hint.": (
        "Un paramètre post_logout_redirect_uri demande un id_token_hint valide."
    ),
    "post_logout_redirect_uri is not registered for this application.": (
        "Le paramètre post_logout_redirect_uri n'est pas enregistré pour cette application."
    ),
    "This logout request could not be verified.": (
        "Cette demande de déconnexion n'a pas pu être vérifiée."
    ),
    "There is no such SAML connection.": "Cette connexion SAML n'existe pas.",
    "There is no such sign-in method.": "Cette méthode de connexion n'existe pas.",
    # SAML sign-in
    "The answer from your organisation's sign-in page does not belong to a sign-in in "
    "progress. Go back to the application and sign in again.": (
        "La réponse de la page de connexion de votre organisation ne correspond à aucune "
        "connexion en cours. Revenez à l'application et reconnectez-vous."
    ),
    "The sign-in could not be completed.": "La connexion n'a pas pu aboutir.",
    "No application is set up for this sign-in.": (
        "Aucune application n'est configurée pour cette connexion."
    ),
    "This account is blocked.": "Ce compte est bloqué.",
    "Please sign in again.": "Veuillez vous reconnecter.",
    # a login ended without a code (step.fail)
    "The user denied the request.": "L'utilisateur a refusé la demande.",
    "user is blocked": "l'utilisateur est bloqué",
    "The requested authentication context is not available.": (
        "Le contexte d'authentification demandé n'est pas disponible."
    ),
    "The application no longer allows this request.": (
        "L'application n'autorise plus cette demande."
    ),
    "The requested authentication context was not met.": (
        "Le contexte d'authentification demandé n'a pas été atteint."
    ),
    "The login session changed.": "La session de connexion a changé.",
    "End-user authentication is required.": "L'authentification de l'utilisateur est requise.",
    "The connection is not enabled for this app.": (
        "Cette connexion n'est pas activée pour cette application."
    ),
    "Multi-factor authentication is required.": "L'authentification multifacteur est requise.",
    "The user declined to link the accounts.": "L'utilisateur a refusé d'associer les comptes.",
    # upstream connections (social, enterprise)
    "The account you signed in with is not the one to link.": (
        "Le compte avec lequel vous vous êtes connecté n'est pas celui à associer."
    ),
    "This sign-in was already completed in another window. Please sign in again.": (
        "Cette connexion a déjà abouti dans une autre fenêtre. Veuillez vous reconnecter."
    ),
    "The sign-in could not be verified.": "La connexion n'a pas pu être vérifiée.",
    "This sign-in method is not available.": "Ce moyen de connexion n'est pas disponible.",
    "This sign-in can no longer be linked.": "Cette connexion ne peut plus être associée.",
    "This account is already linked.": "Ce compte est déjà associé.",
    "This sign-in method is not configured correctly.": (
        "Ce moyen de connexion n'est pas configuré correctement."
    ),
    "The sign-in could not be completed. Please try again.": (
        "La connexion n'a pas pu aboutir. Veuillez réessayer."
    ),
    "The sign-in provider's configuration could not be used.": (
        "La configuration du fournisseur de connexion n'a pas pu être utilisée."
    ),
    "The sign-in provider's configuration names another issuer.": (
        "La configuration du fournisseur de connexion nomme un autre émetteur."
    ),
    "The sign-in provider's keys could not be read.": (
        "Les clés du fournisseur de connexion n'ont pas pu être lues."
    ),
    "The sign-in provider's ID token could not be verified.": (
        "Le jeton d'identité du fournisseur de connexion n'a pas pu être vérifié."
    ),
    "The sign-in provider's profile has no user id.": (
        "Le profil du fournisseur de connexion n'a pas d'identifiant d'utilisateur."
    ),
    "The sign-in provider's email list could not be read.": (
        "La liste d'adresses e-mail du fournisseur de connexion n'a pas pu être lue."
    ),
    "The sign-in provider sent no authorization code.": (
        "Le fournisseur de connexion n'a envoyé aucun code d'autorisation."
    ),
    "The sign-in provider's profile could not be read.": (
        "Le profil du fournisseur de connexion n'a pas pu être lu."
    ),
    "The sign-in answer came from another provider.": (
        "La réponse de connexion provient d'un autre fournisseur."
    ),
    "The sign-in answer did not say which provider sent it.": (
        "La réponse de connexion n'indique pas quel fournisseur l'a envoyée."
    ),
    "The sign-in provider's profile does not match the sign-in.": (
        "Le profil du fournisseur de connexion ne correspond pas à la connexion."
    ),
    "The sign-in provider refused a request.": "Le fournisseur de connexion a refusé une requête.",
    "The sign-in provider did not accept the sign-in.": (
        "Le fournisseur de connexion n'a pas accepté la connexion."
    ),
    "The sign-in provider sent no access token.": (
        "Le fournisseur de connexion n'a envoyé aucun jeton d'accès."
    ),
    "The sign-in provider sent a token idp cannot use.": (
        "Le fournisseur de connexion a envoyé un jeton inutilisable."
    ),
    "The sign-in provider could not be reached.": (
        "Le fournisseur de connexion n'a pas pu être joint."
    ),
    "The sign-in provider sent an answer idp cannot read.": (
        "Le fournisseur de connexion a envoyé une réponse illisible."
    ),
    "The sign-in provider sent an answer that is too large.": (
        "Le fournisseur de connexion a envoyé une réponse trop volumineuse."
    ),
    # an authorization request refused on a page (no redirect URI to trust): the common
    # reasons, Authlib's (RFC 6749 §4.1.2.1) and idp.oauth.authorize's; the rarer ones, for the
    # application's developer, stay English under the translated title
    "Missing 'client_id' parameter.": "Le paramètre client_id manque.",
    "The client does not exist on this server.": "Cette application n'existe pas sur ce serveur.",
    "Missing 'redirect_uri' in request.": "Le paramètre redirect_uri manque.",
    "Redirect URI {uri} is not supported by client.": (
        "L'URI de redirection {uri} n'est pas enregistrée pour cette application."
    ),
    "Parameter {name} is repeated.": "Le paramètre {name} est répété.",
    "Only response_mode=query or form_post is supported.": (
        "Seuls response_mode=query et form_post sont pris en charge."
    ),
    "Invalid request parameters.": "Paramètres de la demande non valides.",
    "The response type is not supported.": "Ce type de réponse n'est pas pris en charge.",
    # werkzeug's HTTP errors, by name and description
    "Bad Request": "Requête incorrecte",
    "The browser (or proxy) sent a request that this server could not understand.": (
        "Le navigateur (ou un proxy) a envoyé une requête que ce serveur n'a pas pu comprendre."
    ),
    "Forbidden": "Accès interdit",
    "You don't have the permission to access the requested resource. It is either "
    "read-protected or not readable by the server.": (
        "Vous n'avez pas l'autorisation d'accéder à la ressource demandée."
    ),
    "Not Found": "Page introuvable",
    "The requested URL was not found on the server. If you entered the URL manually please "
    "check your spelling and try again.": (
        "L'adresse demandée n'existe pas sur ce serveur. Si vous l'avez saisie à la main, "
        "vérifiez-la et réessayez."
    ),
    "Method Not Allowed": "Méthode non autorisée",
    "The method is not allowed for the requested URL.": (
        "Cette méthode n'est pas autorisée pour l'adresse demandée."
    ),
    "Request Entity Too Large": "Requête trop volumineuse",
    "The data value transmitted exceeds the capacity limit.": (
        "Les données envoyées dépassent la limite autorisée."
    ),
    "Unsupported Media Type": "Type de contenu non pris en charge",
    "The server does not support the media type transmitted in the request.": (
        "Le serveur ne prend pas en charge le type de contenu de la requête."
    ),
    "Too Many Requests": "Trop de requêtes",
    "This user has exceeded an allotted request count. Try again later.": (
        "Trop de requêtes ont été envoyées. Réessayez plus tard."
    ),
}
