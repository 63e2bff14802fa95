"""The words of the web pages in each language the definitions offer. Labels of types,
fields and views come from the definitions; these are the interface's own. A missing
translation shows the English text."""
from __future__ import annotations

from collections.abc import Callable
from functools import lru_cache

FRENCH = {
    "Sign in": "Se connecter",
    "Sign out": "Se déconnecter",
    "Login": "Identifiant",
    "Password": "Mot de passe",
    "The login or the password is wrong.": "L'identifiant ou le mot de passe est incorrect.",
    "Too many failed sign-ins: try again in {minutes} min.":
        "Trop d'échecs de connexion : réessayez dans {minutes} min.",
    "Lists": "Listes",
    "Search": "Rechercher",
    "Filter": "Filtre",
    "Apply": "Appliquer",
    "Previous": "Précédent",
    "Next": "Suivant",
    "{first}–{last} of {total}": "{first}–{last} sur {total}",
    "Nothing matches.": "Aucun résultat.",
    "History": "Historique",
    "Timers": "Délais",
    "Due": "Échéance",
    "Used": "Consommé",
    "Actions": "Actions",
    "Fire": "Valider",
    "Cancel": "Annuler",
    "Save": "Enregistrer",
    "Support portal": "Portail d'assistance",
    "Stopwatch": "Chronomètre",
    "Confirm": "Confirmer",
    "My account": "Mon compte",
    "My lists": "Mes listes",
    "Import": "Importer",
    "{count} records imported.": "{count} enregistrements importés.",
    "Nothing was imported. Correct these rows and import the file again:":
        "Rien n'a été importé. Corrigez ces lignes et importez à nouveau le fichier :",
    "Row": "Ligne", "Column": "Colonne", "Problem": "Problème",
    "The first row names the columns, by field name or label:":
        "La première ligne nomme les colonnes, par nom de champ ou libellé :",
    "Save this list as…": "Enregistrer cette liste sous…",
    "{count} records made.": "{count} enregistrements créés.",
    "For each ticked record:": "Pour chaque ligne cochée :",
    "shared among them:": "réparti entre elles :",
    "Thank you: your request is registered.": "Merci : votre demande est enregistrée.",
    "Its number:": "Son numéro :",
    "Too many requests from your address; please try again in an hour.":
        "Trop de demandes depuis votre adresse ; réessayez dans une heure.",
    "Your name": "Votre nom",
    "Your e-mail address": "Votre adresse e-mail",
    "Send": "Envoyer",
    "Change my password": "Changer mon mot de passe",
    "Current password": "Mot de passe actuel",
    "New password": "Nouveau mot de passe",
    "The new password again": "Le nouveau mot de passe, à nouveau",
    "The current password is wrong.": "Le mot de passe actuel est incorrect.",
    "The two new passwords differ.": "Les deux nouveaux mots de passe diffèrent.",
    "Your password is changed.": "Votre mot de passe est changé.",
    "{count} other sessions were ended.": "{count} autres sessions ont été fermées.",
    "Done: thank you.": "C'est fait, merci.",
    "Start": "Démarrer",
    "Stop": "Arrêter",
    "Reset": "Remettre à zéro",
    "Edit": "Modifier",
    "New": "Nouveau",
    "Files": "Fichiers",
    "Home": "Accueil",
    "records": "enregistrements",
    "for": "pour",
    "There is no such list.": "Cette liste n'existe pas.",
    "Export to Excel": "Exporter vers Excel",
    "{done} of {total} rows": "{done} lignes sur {total}",
    "Preparing the export…": "Préparation de l'export…",
    "Download {filename}": "Télécharger {filename}",
    "The export failed: {error}": "L'export a échoué : {error}",
    "There is no such export.": "Cet export n'existe pas.",
    "waiting": "non démarré", "running": "en cours", "paused": "suspendu", "met": "respecté", "breached": "dépassé",
}
CATALOGS = {"fr": FRENCH}


@lru_cache(maxsize=16)
def translator(language: str) -> Callable[..., str]:
    """`t("Sign in")` in `language`; named values fill `{placeholders}`."""
    catalog = CATALOGS.get(language, {})

    def translate(text: str, **values) -> str:
        return catalog.get(text, text).format(**values) if values else catalog.get(text, text)
    return translate
