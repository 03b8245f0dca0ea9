"""French messages of the pages outside a login: the account pages (sessions, second step,
password change), password reset, email links (verification, unblock), logout, the device
flow's pages and account linking (see :mod:`idp.i18n`)."""

MESSAGES: dict[str, str] = {
    # account: sessions, applications, sign-in methods
    "Your sessions": "Vos sessions",
    "Signed in at {time}": "Connexion le {time}",
    "Signed in at {time} (this browser)": "Connexion le {time} (ce navigateur)",
    "End": "Terminer",
    "the session signed in at {time}": "la session ouverte le {time}",
    "Applications you allowed": "Applications que vous avez autorisées",
    "Remove access": "Retirer l'accès",
    "for {app}": "pour {app}",
    "Sign-in methods": "Moyens de connexion",
    "Remove": "Retirer",
    "Change password": "Changer de mot de passe",
    "Second step (MFA)": "Deuxième étape (MFA)",
    "Signed out": "Déconnecté",
    "You are not signed in": "Vous n'êtes pas connecté",
    "Sign in through an application to manage your account.": (
        "Connectez-vous depuis une application pour gérer votre compte."
    ),
    # account: second step
    "Your second step": "Votre deuxième étape",
    "Your password": "Votre mot de passe",
    "You signed in more than 10 minutes ago: changes here need your password again.": (
        "Vous vous êtes connecté il y a plus de 10 minutes : les modifications ici demandent "
        "à nouveau votre mot de passe."
    ),
    "You have no second step yet.": "Vous n'avez pas encore de deuxième étape.",
    "Add an authenticator app": "Ajouter une application d'authentification",
    "Recovery codes": "Codes de récupération",
    "You have 1 unused recovery code. New codes replace all of them.": (
        "Il vous reste 1 code de récupération inutilisé. De nouveaux codes les remplacent tous."
    ),
    "You have {n} unused recovery codes. New codes replace all of them.": (
        "Il vous reste {n} codes de récupération inutilisés. De nouveaux codes les remplacent tous."
    ),
    "New recovery codes": "Nouveaux codes de récupération",
    "Type your password to confirm this change.": (
        "Saisissez votre mot de passe pour confirmer cette modification."
    ),
    "The password is wrong.": "Le mot de passe est incorrect.",
    "The factor was removed.": "Le facteur a été retiré.",
    "That factor no longer exists.": "Ce facteur n'existe plus.",
    "Authenticator apps are not available.": (
        "Les applications d'authentification ne sont pas disponibles."
    ),
    "Your authenticator app was added.": "Votre application d'authentification a été ajoutée.",
    "Start again: that setup expired.": "Recommencez : cette configuration a expiré.",
    "Text message to {number}": "SMS au {number}",
    "Voice call to {number}": "Appel vocal au {number}",
    "Authenticator app": "Application d'authentification",
    "Passkey": "Clé d'accès",
    "Security key": "Clé de sécurité",
    "Push device": "Appareil push",
    "Push device (code)": "Appareil push (code)",
    "QR code of the authenticator key": "QR code de la clé d'authentification",
    "QR code of the enrolment ticket": "QR code du ticket d'inscription",
    # account: second step, every kind (issue 19)
    "Add a second step": "Ajouter une deuxième étape",
    "Add a passkey": "Ajouter une clé d'accès",
    "Add a security key": "Ajouter une clé de sécurité",
    "Add a phone for push approval": "Ajouter un téléphone pour l'approbation push",
    "Add a phone for text messages or calls": "Ajouter un téléphone pour les SMS ou les appels",
    "Added {time}": "Ajouté le {time}",
    "Last used {time}": "Dernière utilisation le {time}",
    "Never used": "Jamais utilisé",
    "Name": "Nom",
    "Rename": "Renommer",
    "The factor was renamed.": "Le facteur a été renommé.",
    "You have as many of these as allowed. Remove one before adding another.": (
        "Vous en avez déjà autant que permis. Retirez-en un avant d'en ajouter un autre."
    ),
    "Back to your second step": "Retour à votre deuxième étape",
    "This kind of second step is not available.": (
        "Ce type de deuxième étape n'est pas disponible."
    ),
    "Your new second step was added.": "Votre nouvelle deuxième étape a été ajoutée.",
    "Your browser asks you to create a passkey on this device or on your phone.": (
        "Votre navigateur vous demande de créer une clé d'accès sur cet appareil ou sur votre "
        "téléphone."
    ),
    "Your browser asks you to insert or touch your security key.": (
        "Votre navigateur vous demande d'insérer ou de toucher votre clé de sécurité."
    ),
    "This needs JavaScript in your browser. Turn it on, or add another kind of second step.": (
        "Cela demande JavaScript dans votre navigateur. Activez-le, ou ajoutez un autre type de "
        "deuxième étape."
    ),
    "Built into a device": "Intégrée à un appareil",
    "Security key ({transports})": "Clé de sécurité ({transports})",
    "Phone": "Téléphone",
    "Which phone?": "Quel téléphone ?",
    # account: password change
    "Your password was changed and your other sessions were ended.": (
        "Votre mot de passe a été changé et vos autres sessions ont été fermées."
    ),
    "Current password": "Mot de passe actuel",
    "New password": "Nouveau mot de passe",
    "Too many attempts. Try later.": "Trop de tentatives. Réessayez plus tard.",
    "The current password is wrong.": "Le mot de passe actuel est incorrect.",
    # password reset
    "Reset your password": "Réinitialiser votre mot de passe",
    "If an account exists for that address, we sent it a link to reset the password.": (
        "Si un compte existe pour cette adresse, nous lui avons envoyé un lien pour "
        "réinitialiser le mot de passe."
    ),
    "Send me a link": "M'envoyer un lien",
    "Choose a new password": "Choisissez un nouveau mot de passe",
    "Save": "Enregistrer",
    "Link expired": "Lien expiré",
    "This link is no longer valid. Ask for a new one.": (
        "Ce lien n'est plus valide. Demandez-en un nouveau."
    ),
    "This link is no longer valid.": "Ce lien n'est plus valide.",
    "Password changed": "Mot de passe changé",
    "Sign in with your new password. Every other session was ended.": (
        "Connectez-vous avec votre nouveau mot de passe. Toutes les autres sessions ont été "
        "fermées."
    ),
    # email verification, unblock
    "Verify your email": "Vérifiez votre adresse e-mail",
    "Email verified": "Adresse e-mail vérifiée",
    "Thank you. You can close this window.": "Merci. Vous pouvez fermer cette fenêtre.",
    "Verify my email address": "Vérifier mon adresse e-mail",
    "Unblock sign-in": "Débloquer la connexion",
    "Sign-in unblocked": "Connexion débloquée",
    "You can sign in again.": "Vous pouvez à nouveau vous connecter.",
    "Unblock my account": "Débloquer mon compte",
    # logout
    "Sign out": "Déconnexion",
    "Sign out?": "Se déconnecter ?",
    "Yes, sign me out": "Oui, me déconnecter",
    "No, stay signed in": "Non, rester connecté",
    "You are signed out": "Vous êtes déconnecté",
    "You can close this window.": "Vous pouvez fermer cette fenêtre.",
    "You are still signed in": "Vous êtes toujours connecté",
    # device flow
    "Connect a device": "Connecter un appareil",
    "Check that this code is the one shown on your device, then continue. Never enter a code "
    "that someone sent you.": (
        "Vérifiez que ce code est celui affiché sur votre appareil, puis continuez. Ne saisissez "
        "jamais un code que quelqu'un vous a envoyé."
    ),
    "Enter the code shown on your device.": "Saisissez le code affiché sur votre appareil.",
    "Code": "Code",
    "Connect {app}": "Connecter {app}",
    "Connect {app}?": "Connecter {app} ?",
    "A device running {app} asks to be signed in as {account} and to:": (
        "Un appareil exécutant {app} demande à être connecté en tant que {account} et à :"
    ),
    "A device running {app} asks to be signed in as {account}.": (
        "Un appareil exécutant {app} demande à être connecté en tant que {account}."
    ),
    "Approve only if you started this on your own device just now.": (
        "N'approuvez que si vous venez de lancer cette demande sur votre propre appareil."
    ),
    "Approve": "Approuver",
    "{app} is being signed in on your device. You can close this window.": (
        "{app} est en cours de connexion sur votre appareil. Vous pouvez fermer cette fenêtre."
    ),
    "Device connected": "Appareil connecté",
    "Device not connected": "Appareil non connecté",
    "That code is not valid. Check the code on your device and try again.": (
        "Ce code n'est pas valide. Vérifiez le code sur votre appareil et réessayez."
    ),
    "Too many wrong codes were entered. Try again later.": (
        "Trop de codes erronés ont été saisis. Réessayez plus tard."
    ),
    "This code has expired. Start again on your device to get a new one.": (
        "Ce code a expiré. Recommencez sur votre appareil pour en obtenir un nouveau."
    ),
    "You denied the request. The device is not connected.": (
        "Vous avez refusé la demande. L'appareil n'est pas connecté."
    ),
    "{scope} on {audience}": "{scope} sur {audience}",
    # account linking, upstream sign-in
    "Link your accounts": "Associez vos comptes",
    "An account for {account} already exists. To sign in with {provider} from now on, prove "
    "that this account is yours.": (
        "Un compte existe déjà pour {account}. Pour vous connecter désormais avec {provider}, "
        "prouvez que ce compte est le vôtre."
    ),
    "Password of {email}": "Mot de passe de {email}",
    "Link and continue": "Associer et continuer",
    "Or prove it by signing in the way you usually do:": (
        "Ou prouvez-le en vous connectant comme d'habitude :"
    ),
    "Prove it by signing in the way you usually do:": (
        "Prouvez-le en vous connectant comme d'habitude :"
    ),
    "This account cannot be proved here. Sign in the way you usually do instead.": (
        "Ce compte ne peut pas être prouvé ici. Connectez-vous plutôt comme d'habitude."
    ),
    "Cancel": "Annuler",
    "Wrong password.": "Mot de passe incorrect.",
    "That sign-in method is not available.": "Ce moyen de connexion n'est pas disponible.",
    "Your organisation's sign-in page is next.": (
        "La page de connexion de votre organisation est la suivante."
    ),
    # MFA notices
    "We emailed you a code.": "Nous vous avons envoyé un code par e-mail.",
    "We texted {number} with a code.": "Nous avons envoyé un code par SMS au {number}.",
    "We are calling {number} with a code.": "Nous appelons le {number} avec un code.",
    "We sent a request to your phone.": "Nous avons envoyé une demande à votre téléphone.",
    "Too many codes were sent to this phone. Try again later.": (
        "Trop de codes ont été envoyés à ce téléphone. Réessayez plus tard."
    ),
    "We could not send the code. Try again.": "Nous n'avons pas pu envoyer le code. Réessayez.",
    "Too many attempts. Try again later.": "Trop de tentatives. Réessayez plus tard.",
    "That did not work. Try again.": "Cela n'a pas fonctionné. Réessayez.",
    # dates on the pages (idp/__init__.py's when_utc: "6 Dec 2026, 11:20 UTC")
    "Jan": "janv.",
    "Feb": "févr.",
    "Mar": "mars",
    "Apr": "avr.",
    "May": "mai",
    "Jun": "juin",
    "Jul": "juil.",
    "Aug": "août",
    "Sep": "sept.",
    "Oct": "oct.",
    "Nov": "nov.",
    "Dec": "déc.",
}
