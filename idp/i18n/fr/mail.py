"""French mail and text messages to the user (see :mod:`idp.i18n`): written in the language
of the page that sent them, their links carry it (``idp.i18n.link_params``)."""

MESSAGES: dict[str, str] = {
    # the reset mail's subject is the reset page's title (account.py)
    "Open this link to choose a new password:\n\n{link}\n\n"
    "If you did not ask for this, ignore this message.": (
        "Ouvrez ce lien pour choisir un nouveau mot de passe :\n\n{link}\n\n"
        "Si vous n'avez rien demandé, ignorez ce message."
    ),
    "Verify your email address": "Vérifiez votre adresse e-mail",
    "Open this link to verify your email address:\n\n{link}\n": (
        "Ouvrez ce lien pour vérifier votre adresse e-mail :\n\n{link}\n"
    ),
    "Someone tried to sign up with your address": (
        "Quelqu'un a essayé de s'inscrire avec votre adresse"
    ),
    "An account already exists for this address. If that was you, sign in, or reset your "
    "password from the sign-in page.": (
        "Un compte existe déjà pour cette adresse. Si c'était vous, connectez-vous, ou "
        "réinitialisez votre mot de passe depuis la page de connexion."
    ),
    "Many failed sign-in attempts on your account": (
        "De nombreuses tentatives de connexion ont échoué sur votre compte"
    ),
    "There were many failed attempts to sign in to your account from {ip}. If it was not "
    "you, consider changing your password.": (
        "De nombreuses tentatives de connexion à votre compte ont échoué depuis {ip}. Si ce "
        "n'était pas vous, pensez à changer votre mot de passe."
    ),
    "Sign-in attempts to your account were blocked": (
        "Les tentatives de connexion à votre compte ont été bloquées"
    ),
    "After too many failed attempts from {ip}, sign-in to your account from that address is "
    "blocked for a while. If it was you, lift the block here:\n\n{link}\n\n"
    "If it was not you, consider changing your password.": (
        "Après trop de tentatives échouées depuis {ip}, la connexion à votre compte depuis "
        "cette adresse est bloquée pendant un moment. Si c'était vous, levez le blocage ici :"
        "\n\n{link}\n\nSi ce n'était pas vous, pensez à changer votre mot de passe."
    ),
    "Your sign-in code": "Votre code de connexion",
    "Your code is {code}. It expires in 5 minutes.\n": (
        "Votre code est {code}. Il expire dans 5 minutes.\n"
    ),
    "Your sign-in code is {code}. It expires in 5 minutes.": (
        "Votre code de connexion est {code}. Il expire dans 5 minutes."
    ),
}
