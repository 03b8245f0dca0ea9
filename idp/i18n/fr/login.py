"""French messages of a login's pages: login, sign-up, MFA, consent, form_post and the error
pages (see :mod:`idp.i18n`; the English text is the key, placeholders are ``str.format`` names)."""

MESSAGES: dict[str, str] = {
    # login
    "Sign in": "Connexion",
    "to continue to": "pour continuer vers",
    "Email": "Adresse e-mail",
    "Password": "Mot de passe",
    "Continue": "Continuer",
    "or": "ou",
    "Continue with {label}": "Continuer avec {label}",
    "Company accounts: enter your email and continue, no password.": (
        "Comptes d'entreprise : saisissez votre adresse e-mail et continuez, sans mot de passe."
    ),
    "Forgot your password?": "Mot de passe oublié ?",
    "Create an account": "Créer un compte",
    "Sign in with a passkey": "Se connecter avec une clé d'accès",
    "Wrong email or password.": "Adresse e-mail ou mot de passe incorrect.",
    "That passkey was not accepted. Try again, or sign in with your password.": (
        "Cette clé d'accès n'a pas été acceptée. Réessayez, ou connectez-vous avec votre "
        "mot de passe."
    ),
    # sign-up
    "Create your account": "Créez votre compte",
    "At least {n} characters; a few unrelated words work well.": (
        "Au moins {n} caractères ; quelques mots sans rapport entre eux conviennent bien."
    ),
    "Sign up": "S'inscrire",
    "I already have an account": "J'ai déjà un compte",
    "Check your email": "Consultez votre messagerie",
    "We sent a message to": "Nous avons envoyé un message à",
    "Follow its link to verify your address.": "Suivez son lien pour vérifier votre adresse.",
    "Continue to sign in": "Continuer vers la connexion",
    "Use at least {n} characters.": "Utilisez au moins {n} caractères.",
    "Enter a valid email address.": "Saisissez une adresse e-mail valide.",
    "Use at most 1024 characters.": "Utilisez au plus 1024 caractères.",
    "This password is too common.": "Ce mot de passe est trop courant.",
    "This password is too easy to guess; add words or characters.": (
        "Ce mot de passe est trop facile à deviner ; ajoutez des mots ou des caractères."
    ),
    # MFA
    "Verify it's you": "Vérifions que c'est vous",
    "Your account is protected by a second step.": (
        "Votre compte est protégé par une deuxième étape."
    ),
    "Code from your authenticator app": "Code de votre application d'authentification",
    "Verify": "Vérifier",
    "Remember this browser for {days} days": "Se souvenir de ce navigateur pendant {days} jours",
    "Use your security key or passkey": "Utiliser votre clé de sécurité ou clé d'accès",
    "Or use your email": "Ou utilisez votre adresse e-mail",
    "Email a code to {address}": "Envoyer un code par e-mail à {address}",
    "Code from the email": "Code reçu par e-mail",
    "Or use your phone": "Ou utilisez votre téléphone",
    "Text me a code": "M'envoyer un code par SMS",
    "Call me with a code": "M'appeler avec un code",
    "Code from the text message or call": "Code reçu par SMS ou par appel",
    "Text messages and calls are not available right now. Use another way below.": (
        "Les SMS et les appels ne sont pas disponibles pour le moment. Choisissez un autre "
        "moyen ci-dessous."
    ),
    "Approve on your phone": "Approuver sur votre téléphone",
    "Open your authenticator and pick this number:": (
        "Ouvrez votre application d'authentification et choisissez ce nombre :"
    ),
    "Waiting for your phone. This page checks again by itself.": (
        "En attente de votre téléphone. Cette page vérifie à nouveau d'elle-même."
    ),
    "Check again": "Vérifier à nouveau",
    "Use a recovery code": "Utiliser un code de récupération",
    "Recovery code": "Code de récupération",
    "Use recovery code": "Utiliser le code de récupération",
    "Set up a second step": "Configurer une deuxième étape",
    "No second step can be set up here at the moment. Contact the service's support.": (
        "Aucune deuxième étape ne peut être configurée ici pour le moment. Contactez "
        "l'assistance du service."
    ),
    "Scan this code with an authenticator app (for example FreeOTP, Aegis or Google "
    "Authenticator), then type the 6-digit code it shows.": (
        "Scannez ce code avec une application d'authentification (par exemple FreeOTP, Aegis "
        "ou Google Authenticator), puis saisissez le code à 6 chiffres qu'elle affiche."
    ),
    "Or enter this key by hand:": "Ou saisissez cette clé à la main :",
    "Setup link": "Lien de configuration",
    "6-digit code": "Code à 6 chiffres",
    "Turn on": "Activer",
    "Approve sign-ins on your phone instead (push)": (
        "Approuver plutôt les connexions sur votre téléphone (push)"
    ),
    "No authenticator app?": "Pas d'application d'authentification ?",
    "Use a text message instead": "Utiliser plutôt un SMS",
    "Text messages are not available.": "Les SMS ne sont pas disponibles.",
    "Or use a security key or passkey": "Ou utilisez une clé de sécurité ou une clé d'accès",
    "Add a security key or passkey": "Ajouter une clé de sécurité ou une clé d'accès",
    "Use your phone": "Utiliser votre téléphone",
    "Use your phone for the second step": "Utiliser votre téléphone pour la deuxième étape",
    "Text messages and calls are not available right now.": (
        "Les SMS et les appels ne sont pas disponibles pour le moment."
    ),
    "Send a new code": "Envoyer un nouveau code",
    "We send a 6-digit code to this phone each time you sign in.": (
        "Nous envoyons un code à 6 chiffres à ce téléphone à chaque connexion."
    ),
    "Phone number, with its country code": "Numéro de téléphone, avec son indicatif de pays",
    "For example +33 6 12 34 56 78.": "Par exemple +33 6 12 34 56 78.",
    "How should the code reach you?": "Comment le code doit-il vous parvenir ?",
    "Text message": "SMS",
    "Voice call": "Appel vocal",
    "Send a code": "Envoyer un code",
    "Use an authenticator app instead": "Utiliser plutôt une application d'authentification",
    "Set up push approval": "Configurer l'approbation push",
    "Scan this code with your authenticator (for example {example}), then continue. The code "
    "works once, for 10 minutes.": (
        "Scannez ce code avec votre application d'authentification (par exemple {example}), "
        "puis continuez. Le code fonctionne une fois, pendant 10 minutes."
    ),
    "Your phone has not enrolled yet. Scan the new code below.": (
        "Votre téléphone n'est pas encore inscrit. Scannez le nouveau code ci-dessous."
    ),
    "Enrolment link": "Lien d'inscription",
    "My phone is set up, continue": "Mon téléphone est configuré, continuer",
    "Your recovery codes": "Vos codes de récupération",
    "Save your recovery codes": "Enregistrez vos codes de récupération",
    "Each code works once, if you lose your authenticator. Keep them somewhere safe: they are "
    "shown only now.": (
        "Chaque code fonctionne une fois, si vous perdez votre application d'authentification. "
        "Gardez-les en lieu sûr : ils ne sont affichés que maintenant."
    ),
    "I saved them, continue": "Je les ai enregistrés, continuer",
    "That code is not right. Try again.": "Ce code n'est pas correct. Réessayez.",
    "That security key or passkey was not accepted. Try again.": (
        "Cette clé de sécurité ou clé d'accès n'a pas été acceptée. Réessayez."
    ),
    "Enter the number with its country code, for example +33 6 12 34 56 78.": (
        "Saisissez le numéro avec son indicatif de pays, par exemple +33 6 12 34 56 78."
    ),
    "The sign-in was denied on your phone.": "La connexion a été refusée sur votre téléphone.",
    "The number picked on your phone did not match. Try again.": (
        "Le nombre choisi sur votre téléphone ne correspondait pas. Réessayez."
    ),
    "The request to your phone expired. Try again or use a code.": (
        "La demande envoyée à votre téléphone a expiré. Réessayez ou utilisez un code."
    ),
    # the security key ceremony's status (idp/static/webauthn.js reads them from the page)
    "Follow the instructions of your browser or security key.": (
        "Suivez les instructions de votre navigateur ou de votre clé de sécurité."
    ),
    "Checking…": "Vérification…",
    "Cancelled, or the security key or passkey was not available. Try again.": (
        "Annulé, ou la clé de sécurité ou clé d'accès n'était pas disponible. Réessayez."
    ),
    "That did not work. Try again, or use another way.": (
        "Cela n'a pas fonctionné. Réessayez, ou utilisez un autre moyen."
    ),
    "the application": "l'application",
    # consent
    "Allow access": "Autoriser l'accès",
    "Allow {app}?": "Autoriser {app} ?",
    "is asking to:": "demande à :",
    "Allow": "Autoriser",
    "Deny": "Refuser",
    "Know who you are": "Savoir qui vous êtes",
    "See your name and profile": "Voir votre nom et votre profil",
    "See your email address": "Voir votre adresse e-mail",
    "See your phone number": "Voir votre numéro de téléphone",
    "See your postal address": "Voir votre adresse postale",
    "Stay signed in to it when you are away": "Rester connecté en votre absence",
    # form_post
    "Signing in": "Connexion en cours",
    "Returning to the application": "Retour à l'application",
    "If the application does not open by itself, press Continue.": (
        "Si l'application ne s'ouvre pas d'elle-même, appuyez sur Continuer."
    ),
    # error pages
    "Need help? Write to": "Besoin d'aide ? Écrivez à",
    "Login link expired": "Lien de connexion expiré",
    "This login page is no longer valid. Go back to the application and sign in again.": (
        "Cette page de connexion n'est plus valide. Revenez à l'application et reconnectez-vous."
    ),
    "Request expired": "Demande expirée",
    "This page is no longer valid. Go back to the application and sign in again.": (
        "Cette page n'est plus valide. Revenez à l'application et reconnectez-vous."
    ),
    "This login cannot be continued": "Cette connexion ne peut pas être poursuivie",
    "The link is invalid or has expired. Go back to the application and sign in again.": (
        "Le lien n'est pas valide ou a expiré. Revenez à l'application et reconnectez-vous."
    ),
    "Sign-in is not available": "La connexion n'est pas disponible",
    "This application has no sign-in method enabled. Contact its administrator.": (
        "Cette application n'a aucun moyen de connexion activé. Contactez son administrateur."
    ),
    "Sign-in method not available": "Moyen de connexion non disponible",
    "This sign-in method is not available for this application.": (
        "Ce moyen de connexion n'est pas disponible pour cette application."
    ),
    "Form expired": "Formulaire expiré",
    "The form was missing its security token. Go back, reload the page and try again.": (
        "Le jeton de sécurité du formulaire manquait. Revenez en arrière, rechargez la page et "
        "réessayez."
    ),
    "Too many attempts": "Trop de tentatives",
    "Try again later.": "Réessayez plus tard.",
    "There were too many failed sign-in attempts from your network. Try again later.": (
        "Trop de tentatives de connexion ont échoué depuis votre réseau. Réessayez plus tard."
    ),
    "Too many requests": "Trop de requêtes",
    "Too many requests from your network. Try later.": (
        "Trop de requêtes depuis votre réseau. Réessayez plus tard."
    ),
    "This sign-in cannot continue": "Cette connexion ne peut pas continuer",
    "It was finished or ended in another window. Go back to the application.": (
        "Elle a été terminée ou close dans une autre fenêtre. Revenez à l'application."
    ),
    "This sign-in cannot be completed": "Cette connexion ne peut pas aboutir",
    "Go back to the application.": "Revenez à l'application.",
    "Push is not available": "Le push n'est pas disponible",
    "Go back and choose another way.": "Revenez en arrière et choisissez un autre moyen.",
    "Please try again": "Veuillez réessayer",
    "Another request changed this at the same time.": (
        "Une autre requête a modifié ceci au même moment."
    ),
    "Temporarily unavailable": "Temporairement indisponible",
    "Please try again in a moment.": "Veuillez réessayer dans un instant.",
    "Something went wrong": "Une erreur s'est produite",
    "Please try again later.": "Veuillez réessayer plus tard.",
    "Sign-up is disabled": "L'inscription est désactivée",
    "Ask an administrator for an account.": "Demandez un compte à un administrateur.",
    "Not found": "Introuvable",
    "Invalid authorization request": "Demande d'autorisation non valide",
    "Unsupported response mode": "Mode de réponse non pris en charge",
}
