"""Nicknames and short forms of given names (Turkish and English), as ASCII-folded keys.

`canonical_first_name("memo")` is `"mehmet"`: two records whose first names share a canonical form
are treated as the same given name by Splink's name comparison and by the clustering guards. The
table maps short form -> full form; a name missing here still compares by Jaro-Winkler.
"""

from __future__ import annotations

# full form: short forms / spellings people use for it (all folded: lower case ASCII)
_GROUPS: dict[str, tuple[str, ...]] = {
    # Turkish
    "mehmet": ("memo", "memet", "mehmed", "mehmetcan"),
    "mustafa": ("musti", "mustii", "mustaf"),
    "ahmet": ("ahmo", "ahmed", "amet"),
    "huseyin": ("huso", "husseyin", "hussein", "huseyn"),
    "hasan": ("haso", "hassan"),
    "ibrahim": ("ibo", "ibrahm"),
    "abdullah": ("apo", "abdul", "abdi"),
    "abdurrahman": ("abdo", "abdurahman"),
    "ismail": ("ismo", "isma"),
    "osman": ("osi", "oso"),
    "suleyman": ("sulo", "suleman"),
    "yusuf": ("yuso", "yusif"),
    "murat": ("muro", "murad"),
    "ramazan": ("rambo", "ramo"),
    "recep": ("reco", "receb"),
    "kemal": ("kemo",),
    "mahmut": ("mahmud", "mahmo"),
    "halil": ("halo",),
    "fatma": ("fato", "fatos", "fadime"),
    "ayse": ("ayso", "aysecik", "ayshe"),
    "emine": ("emo", "eminecik"),
    "hatice": ("hatco", "hatcem", "hatic"),
    "zeynep": ("zeyno", "zeyneb", "zey"),
    "elif": ("elo", "elifcan"),
    "meryem": ("mery", "meryam"),
    "sultan": ("sulti",),
    "zehra": ("zehro",),
    "hulya": ("hulyacim",),
    "ozlem": ("ozi",),
    "gulsum": ("gulsu",),
    "ozgur": ("ozgi",),
    "burak": ("buri",),
    "serkan": ("sero",),
    "tugba": ("tugi",),
    "selin": ("seli",),
    "ebru": ("ebi",),
    "esra": ("esro",),
    "kubra": ("kubi",),
    "gamze": ("gamo",),
    "sevgi": ("sevo",),
    "cem": ("cemo",),
    "can": ("cano",),
    "omer": ("omo", "umar", "omar"),
    "yasar": ("yaso",),
    "erkan": ("erko",),
    "gokhan": ("goko", "gokan"),
    "sinan": ("sino",),
    "tuncay": ("tunco",),
    "volkan": ("volki",),
    # English
    "robert": ("bob", "bobby", "rob", "robbie", "bert"),
    "william": ("bill", "billy", "will", "willie", "liam"),
    "richard": ("rick", "ricky", "dick", "rich", "richie"),
    "james": ("jim", "jimmy", "jamie"),
    "john": ("jack", "johnny", "jon"),
    "joseph": ("joe", "joey", "jo"),
    "michael": ("mike", "mikey", "mick", "mickey"),
    "thomas": ("tom", "tommy"),
    "charles": ("charlie", "chuck", "chas"),
    "christopher": ("chris", "kit", "topher"),
    "daniel": ("dan", "danny"),
    "matthew": ("matt", "matty"),
    "anthony": ("tony", "ant"),
    "andrew": ("andy", "drew"),
    "edward": ("ed", "eddie", "ted", "ned"),
    "benjamin": ("ben", "benny", "benji"),
    "samuel": ("sam", "sammy"),
    "nicholas": ("nick", "nicky"),
    "alexander": ("alex", "al", "sandy", "xander"),
    "jonathan": ("jon", "jonny"),
    "stephen": ("steve", "stevie", "steven"),
    "timothy": ("tim", "timmy"),
    "patrick": ("pat", "paddy"),
    "peter": ("pete",),
    "david": ("dave", "davy"),
    "henry": ("harry", "hank"),
    "elizabeth": ("liz", "lizzie", "beth", "betty", "eliza", "libby", "elisabeth"),
    "margaret": ("maggie", "meg", "peggy", "marge", "margie"),
    "katherine": ("kate", "katie", "kathy", "kat", "catherine", "kathryn", "cathy"),
    "jennifer": ("jen", "jenny"),
    "rebecca": ("becky", "becca"),
    "deborah": ("deb", "debbie", "debra"),
    "susan": ("sue", "susie", "suzy"),
    "patricia": ("patty", "trish", "tricia", "pat"),
    "victoria": ("vicky", "tori", "vic"),
    "alexandra": ("alexa", "lexi", "sasha"),
    "samantha": ("sam", "sammie"),
    "christine": ("chris", "chrissy", "christina", "tina"),
    "jessica": ("jess", "jessie"),
    "abigail": ("abby", "abbie"),
    "dorothy": ("dot", "dotty", "dolly"),
    "eleanor": ("ellie", "nell", "nora", "elle"),
}

# short form -> every full form it can stand for ("sam": samuel or samantha)
NICKNAMES: dict[str, frozenset[str]] = {}
for _full, _shorts in _GROUPS.items():
    for _short in _shorts:
        NICKNAMES[_short] = NICKNAMES.get(_short, frozenset()) | {_full}


def name_forms(folded_token: str) -> frozenset[str]:
    """The token and every full form it is a short form of."""
    return NICKNAMES.get(folded_token, frozenset()) | {folded_token}


def canonical_first_name(folded: str | None) -> str | None:
    """The canonical form of a folded given name (first token only); the name itself if unknown.

    An ambiguous short form takes its alphabetically first full form, so the result is stable.
    """
    if not folded:
        return None
    first = folded.split(" ")[0]
    fulls = NICKNAMES.get(first)
    return min(fulls) if fulls else first
