"""Locale data for the demo population: weighted name pools, places, email domains, nicknames.

Turkish (the default) is curated: real name frequencies (a few names are very common, which is
what makes "Mehmet Yılmaz" a hard negative), cities with plate-code postcodes, districts,
neighbourhoods and landline area codes. English (en_GB/en_US) has curated name heads and
nicknames. Any other Faker locale falls back to Faker's own lists with Zipf-like weights.
"""

from __future__ import annotations

import itertools
import random
from dataclasses import dataclass, field

from faker import Faker

# --- Turkish -------------------------------------------------------------------------------------

# Most common names with rough population shares; the long tail comes from Faker's lists.
TR_MALE_HEAD = {
    "Mehmet": 6.0, "Mustafa": 4.5, "Ahmet": 4.0, "Ali": 3.5, "Hüseyin": 3.0, "Hasan": 2.8,
    "İbrahim": 2.5, "İsmail": 2.0, "Osman": 1.8, "Yusuf": 1.8, "Murat": 1.7, "Ömer": 1.5,
    "Ramazan": 1.4, "Halil": 1.3, "Süleyman": 1.3, "Abdullah": 1.2, "Muhammed": 1.2,
    "Mahmut": 1.1, "Recep": 1.0, "Emre": 1.2, "Burak": 1.2, "Can": 1.0, "Cem": 0.8, "Kemal": 0.9,
    "Serkan": 0.8, "Emir": 0.8, "Enes": 0.8, "Onur": 0.7, "Özgür": 0.7, "Furkan": 0.7,
    "Oğuz": 0.6, "Gökhan": 0.6, "Tolga": 0.5, "Barış": 0.6, "Kaan": 0.5, "Uğur": 0.6,
}
TR_FEMALE_HEAD = {
    "Fatma": 5.5, "Ayşe": 5.0, "Emine": 4.0, "Hatice": 3.5, "Zeynep": 3.0, "Elif": 2.8,
    "Meryem": 2.0, "Şerife": 1.5, "Zehra": 1.5, "Sultan": 1.3, "Hanife": 1.2, "Merve": 1.5,
    "Özlem": 1.0, "Esra": 1.2, "Büşra": 1.0, "Hülya": 0.9, "Gül": 0.8, "Yasemin": 0.9,
    "Derya": 0.8, "Songül": 0.8, "Kübra": 0.8, "Ebru": 0.8, "Dilek": 0.7, "Gamze": 0.6,
    "Tuğba": 0.7, "Sevgi": 0.6, "Şeyma": 0.6, "İrem": 0.6, "Gizem": 0.6, "Ece": 0.5,
    "Selin": 0.5, "Gülsüm": 0.6, "Çiğdem": 0.5, "Aslı": 0.5,
}
TR_LAST_HEAD = {
    "Yılmaz": 2.5, "Kaya": 1.7, "Demir": 1.6, "Şahin": 1.4, "Çelik": 1.4, "Yıldız": 1.3,
    "Yıldırım": 1.2, "Öztürk": 1.1, "Aydın": 1.1, "Özdemir": 1.1, "Arslan": 1.0, "Doğan": 1.0,
    "Kılıç": 0.9, "Aslan": 0.9, "Çetin": 0.8, "Kara": 0.8, "Koç": 0.8, "Kurt": 0.8, "Özkan": 0.7,
    "Şimşek": 0.7, "Polat": 0.6, "Korkmaz": 0.6, "Özcan": 0.6, "Erdoğan": 0.6, "Güneş": 0.5,
    "Aksoy": 0.5, "Kaplan": 0.5, "Avcı": 0.5, "Tekin": 0.5, "Güler": 0.4,
}
_TR_LAST_TAIL_WORDS = (
    "Acar Akın Akkaya Aktaş Alkan Altun Ateş Bayram Bozkurt Bulut Cengiz Coşkun Çakır Çiftçi "
    "Demirci Duman Durmaz Eren Ergün Erol Genç Gök Göktaş Gül Gündoğdu Gürbüz Işık Karaca "
    "Karakaya Karataş Keskin Kocabaş Kocaman Metin Oral Orhan Önal Öz Özer Özgür Sarı Savaş Sezer "
    "Soylu Taş Taşkın Temel Toprak Tunç Turan Uçar Uysal Ünal Yalçın Yavuz Yazıcı Yücel Yurt "
    "Zengin Akgül Aydemir Başaran Bilgiç Büyük Çakmak Çınar Dağ Dinç Ekinci Elmas Erdem Ersoy "
    "Gedik Gümüş Günay Güven Karabulut Karagöz Kılınç Koçak Kuru Mutlu Okur Özbek Özkaya Sağlam "
    "Sevim Sönmez Şen Tan Tuna Türkmen Uğur Ulusoy Yaşar Yiğit Akbaş Bal Baş Cömert Çolak Deniz "
    "Dursun Esen Eser Gökçe Kahraman Kalkan Kartal Kaynak Kuzu Özen Özgen Pehlivan Sarıkaya "
    "Seven Tosun Uzun Yazar Yüce Zorlu Ekici Aktürk Bektaş Canpolat Dalkılıç Erbaş Güngör "
    "Karadağ Özyurt Şeker Tatlı Yurdakul Ayhan Balcı Bilgin Çalışkan Dündar Ergin Kocabıyık"
)
TR_LAST_TAIL = _TR_LAST_TAIL_WORDS.split()
# Turkish surnames are often compounds (Kara+kaya, Öz+demir, Hasan+oğlu): combining parts gives
# the long tail of rarer surnames real data has, beside the very common ones above.
TR_SURNAME_PREFIXES = ("Ak", "Kara", "Öz", "Er", "Al", "Gök", "Demir", "Altın", "Gün", "Ay", "Can",
                       "Kurt", "Şen", "Uz", "Sarı", "Taş", "Tok", "Kır", "Yücel", "Bozkurt",
                       "Tur", "Kök", "Ulu", "Toprak", "Bay", "Çakır", "Erdem", "Yazıcı")
TR_SURNAME_SUFFIXES = ("taş", "kaya", "demir", "oğlu", "soy", "han", "türk", "dağ", "göz", "yurt",
                       "el", "can", "bay", "alp", "ay", "yiğit", "kan", "ok", "tekin", "er",
                       "bulut", "yıldız", "sever", "çelik")
# Second given names: about one Turk in ten has two ("Ayşe Nur", "Mehmet Ali") and uses either.
TR_SECOND_MALE = ("Ali", "Can", "Emin", "Kemal", "Rıza", "Hüseyin", "Efe", "Said", "Akif")
TR_SECOND_FEMALE = ("Nur", "Gül", "Su", "Naz", "Zehra", "Sude", "Ece", "Nil", "Deniz")
# Short forms and spellings people type for their given name (kept modest: realistic, not cruel).
TR_NICKNAMES = {
    "Mehmet": ("Memet", "Mehmed", "Memo"), "Ahmet": ("Ahmed",), "Muhammed": ("Muhammet",),
    "Mahmut": ("Mahmud",), "Mustafa": ("Musti",), "İbrahim": ("İbo",), "Abdullah": ("Apo",),
    "Süleyman": ("Süleman",), "Hüseyin": ("Hüso", "Hüsseyin"), "Hasan": ("Haso",),
    "Ramazan": ("Ramo",), "Recep": ("Receb",), "Murat": ("Murad",), "Fatma": ("Fatoş",),
    "Zeynep": ("Zeyno", "Zeyneb"), "Hatice": ("Hatçe",), "Kemal": ("Kemo",), "Yusuf": ("Yuso",),
}

# plate code, city, population weight, landline area code(s), districts.
# Istanbul's European and Asian sides have different area codes (212 / 216).
TR_CITIES: tuple[tuple[int, str, float, dict[str, str]], ...] = (
    (34, "İstanbul", 15.6, {
        "Kadıköy": "216", "Üsküdar": "216", "Ümraniye": "216", "Ataşehir": "216",
        "Maltepe": "216", "Pendik": "216", "Beşiktaş": "212", "Şişli": "212", "Bakırköy": "212",
        "Esenyurt": "212", "Fatih": "212", "Sarıyer": "212", "Bağcılar": "212",
        "Küçükçekmece": "212", "Beylikdüzü": "212"}),
    (6, "Ankara", 5.8, dict.fromkeys(
        ["Çankaya", "Keçiören", "Yenimahalle", "Mamak", "Etimesgut", "Sincan", "Altındağ"], "312")),
    (35, "İzmir", 4.5, dict.fromkeys(
        ["Karşıyaka", "Bornova", "Buca", "Konak", "Çiğli", "Bayraklı"], "232")),
    (16, "Bursa", 3.2, dict.fromkeys(["Osmangazi", "Nilüfer", "Yıldırım", "İnegöl"], "224")),
    (7, "Antalya", 2.7, dict.fromkeys(
        ["Muratpaşa", "Kepez", "Konyaaltı", "Alanya", "Manavgat"], "242")),
    (42, "Konya", 2.3, dict.fromkeys(["Selçuklu", "Meram", "Karatay"], "332")),
    (1, "Adana", 2.3, dict.fromkeys(["Seyhan", "Çukurova", "Yüreğir"], "322")),
    (27, "Gaziantep", 2.2, dict.fromkeys(["Şahinbey", "Şehitkamil"], "342")),
    (41, "Kocaeli", 2.1, dict.fromkeys(["İzmit", "Gebze", "Darıca", "Gölcük"], "262")),
    (33, "Mersin", 1.9, dict.fromkeys(["Yenişehir", "Mezitli", "Toroslar", "Akdeniz"], "324")),
    (21, "Diyarbakır", 1.8, dict.fromkeys(["Bağlar", "Kayapınar", "Yenişehir"], "412")),
    (31, "Hatay", 1.7, dict.fromkeys(["Antakya", "İskenderun", "Defne"], "326")),
    (38, "Kayseri", 1.4, dict.fromkeys(["Melikgazi", "Kocasinan", "Talas"], "352")),
    (55, "Samsun", 1.4, dict.fromkeys(["İlkadım", "Atakum", "Canik"], "362")),
    (10, "Balıkesir", 1.2, dict.fromkeys(["Karesi", "Altıeylül", "Bandırma"], "266")),
    (54, "Sakarya", 1.1, dict.fromkeys(["Adapazarı", "Serdivan"], "264")),
    (59, "Tekirdağ", 1.1, dict.fromkeys(["Süleymanpaşa", "Çorlu", "Çerkezköy"], "282")),
    (20, "Denizli", 1.0, dict.fromkeys(["Pamukkale", "Merkezefendi"], "258")),
    (48, "Muğla", 1.0, dict.fromkeys(["Bodrum", "Fethiye", "Menteşe", "Marmaris"], "252")),
    (9, "Aydın", 1.1, dict.fromkeys(["Efeler", "Nazilli", "Kuşadası"], "256")),
    (26, "Eskişehir", 0.9, dict.fromkeys(["Odunpazarı", "Tepebaşı"], "222")),
    (61, "Trabzon", 0.8, dict.fromkeys(["Ortahisar", "Akçaabat"], "462")),
    (25, "Erzurum", 0.75, dict.fromkeys(["Yakutiye", "Palandöken"], "442")),
)
TR_NEIGHBOURHOODS = (
    "Cumhuriyet", "Atatürk", "Fatih", "Yenimahalle", "Merkez", "İstiklal", "Hürriyet", "Yıldız",
    "Bahçelievler", "Gazi", "Mimar Sinan", "Yunus Emre", "Barbaros", "Zafer", "Kurtuluş",
    "Çamlıca", "Esentepe", "Güzelyalı", "Selimiye", "Osmanağa", "Mevlana", "Karşıyaka",
)
TR_STREETS = (
    "Atatürk", "Cumhuriyet", "İnönü", "Gazi", "Lale", "Gül", "Menekşe", "Çınar", "Akasya",
    "Papatya", "Fevzi Çakmak", "Kazım Karabekir", "Mithatpaşa", "Şehit Ahmet", "Bağdat", "Ihlamur",
    "Nergis", "Sedef", "Ergenekon", "Zambak", "Yavuz Selim", "Fatih Sultan", "Kardelen", "Defne",
)
# Street kinds: canonical form and the abbreviations people and systems use for it.
TR_STREET_KINDS = {"Caddesi": ("Cad.", "Cd."), "Sokak": ("Sok.", "Sk."), "Bulvarı": ("Blv.",)}
TR_EMAIL_DOMAINS = {
    "gmail.com": 55, "hotmail.com": 20, "outlook.com": 6, "yahoo.com": 5, "icloud.com": 4,
    "yandex.com": 4, "mynet.com": 2, "windowslive.com": 2, "hotmail.com.tr": 2,
}

# --- English ------------------------------------------------------------------------------------

EN_MALE_HEAD = {
    "David": 3.0, "John": 2.8, "James": 2.6, "Michael": 2.4, "Paul": 2.0, "Mark": 1.8,
    "Christopher": 1.8, "Thomas": 1.7, "William": 1.6, "Robert": 1.6, "Daniel": 1.5,
    "Richard": 1.4, "Andrew": 1.4, "Stephen": 1.3, "Matthew": 1.2, "Peter": 1.1, "Jack": 1.0,
    "Oliver": 1.0, "Harry": 1.0, "George": 1.0, "Joseph": 0.9, "Samuel": 0.8, "Benjamin": 0.8,
    "Alexander": 0.7, "Edward": 0.7, "Anthony": 0.7, "Jonathan": 0.6, "Nicholas": 0.6,
}
EN_FEMALE_HEAD = {
    "Sarah": 2.6, "Emma": 2.2, "Elizabeth": 2.0, "Margaret": 1.6, "Susan": 1.6, "Jennifer": 1.5,
    "Rebecca": 1.5, "Laura": 1.4, "Katherine": 1.3, "Charlotte": 1.3, "Emily": 1.3,
    "Jessica": 1.2, "Olivia": 1.2, "Sophie": 1.1, "Victoria": 1.0, "Patricia": 0.9,
    "Amy": 0.9, "Hannah": 0.9, "Lucy": 0.8, "Rachel": 0.8, "Claire": 0.8, "Helen": 0.8,
}
EN_LAST_HEAD = {
    "Smith": 1.3, "Jones": 1.0, "Williams": 0.8, "Taylor": 0.7, "Brown": 0.7, "Davies": 0.6,
    "Evans": 0.5, "Wilson": 0.5, "Thomas": 0.5, "Johnson": 0.4, "Roberts": 0.4, "Robinson": 0.4,
    "Thompson": 0.4, "Wright": 0.4, "Walker": 0.4, "White": 0.3, "Edwards": 0.3, "Hughes": 0.3,
    "Green": 0.3, "Hall": 0.3,
}
EN_NICKNAMES = {
    "William": ("Bill", "Will"), "Robert": ("Bob", "Rob"), "Elizabeth": ("Liz", "Beth"),
    "Margaret": ("Maggie", "Peggy"), "James": ("Jim", "Jamie"), "Thomas": ("Tom",),
    "Richard": ("Rich", "Dick"), "Michael": ("Mike",), "Christopher": ("Chris",),
    "Katherine": ("Kate", "Kathy"), "Jennifer": ("Jen",), "Daniel": ("Dan",),
    "Matthew": ("Matt",), "Jonathan": ("Jon",), "Alexander": ("Alex",), "Samuel": ("Sam",),
    "Benjamin": ("Ben",), "Joseph": ("Joe",), "Edward": ("Ed", "Ted"), "Anthony": ("Tony",),
    "Susan": ("Sue",), "Rebecca": ("Becky",), "Victoria": ("Vicky",), "Jessica": ("Jess",),
    "Patricia": ("Pat",), "Stephen": ("Steve",), "Andrew": ("Andy",), "David": ("Dave",),
    "Peter": ("Pete",), "Nicholas": ("Nick",), "Charlotte": ("Lottie",), "Samantha": ("Sam",),
}
EN_EMAIL_DOMAINS = {
    "gmail.com": 35, "hotmail.co.uk": 15, "outlook.com": 10, "yahoo.co.uk": 10,
    "btinternet.com": 8, "icloud.com": 8, "live.co.uk": 5, "sky.com": 4, "aol.com": 3,
}

CURRENCIES = {"TR": "TRY", "GB": "GBP", "US": "USD", "CA": "CAD", "AU": "AUD", "CH": "CHF",
              "PL": "PLN", "JP": "JPY", "IN": "INR", "BR": "BRL", "SE": "SEK", "NO": "NOK",
              "DK": "DKK", "MX": "MXN"}
# Typical basket (median order value) per currency, so amounts look plausible everywhere.
BASKET_MEDIAN = {"TRY": 850.0, "GBP": 45.0, "USD": 55.0, "EUR": 50.0, "CAD": 70.0, "AUD": 80.0,
                 "CHF": 55.0, "PLN": 200.0, "JPY": 6000.0, "INR": 2500.0, "BRL": 250.0,
                 "SEK": 550.0, "NOK": 550.0, "DKK": 380.0, "MXN": 900.0}
# How people write their country, the first being what a clean system stores.
COUNTRY_SPELLINGS = {
    "TR": ("TR", "Türkiye", "Turkey", "TURKEY"),
    "GB": ("GB", "United Kingdom", "UK", "England"),
    "US": ("US", "USA", "United States"),
}
JUNK_EMAILS = ("test@test.com", "a@a.com", "noemail@noemail.com", "yok@yok.com", "info@info.com")


@dataclass
class Place:
    """A city with its districts; `postcode_base` gives plate-code style postcodes for TR."""

    city: str
    weight: float
    districts: list[str]
    area_codes: dict[str, str] = field(default_factory=dict)
    plate: int | None = None


Pool = tuple[list[str], list[float]]  # values and their cumulative weights


def pick(rng: random.Random, pool: Pool) -> str:
    """One value from a weighted pool (cumulative weights: no re-summing per draw)."""
    return rng.choices(pool[0], cum_weights=pool[1])[0]


@dataclass
class LocaleData:
    locale: str
    language: str
    region: str
    male: Pool
    female: Pool
    last: Pool
    second_male: tuple[str, ...]
    second_female: tuple[str, ...]
    nicknames: dict[str, tuple[str, ...]]
    places: list[Place]
    email_domains: Pool
    currency: str
    turkish: bool
    faker: Faker


def _weighted(head: dict[str, float], tail: list[str], tail_share: float) -> Pool:
    """Head names with their weights plus a tail sharing `tail_share` of the mass, Zipf-like."""
    names = list(head)
    weights = list(head.values())
    head_mass = sum(weights)
    rest = [n for n in dict.fromkeys(tail) if n not in head]
    if rest:
        zipf = [1.0 / (rank + 20) ** 0.7 for rank in range(len(rest))]
        # Without a curated head the tail is the whole pool.
        scale = 1.0 if not head_mass else head_mass * tail_share / (1 - tail_share) / sum(zipf)
        names += rest
        weights += [z * scale for z in zipf]
    return names, list(itertools.accumulate(weights))


def _faker_names(fake: Faker, attribute: str) -> list[str]:
    """A locale's name list, most frequent first where Faker knows frequencies."""
    provider = fake.provider("faker.providers.person")
    values = getattr(provider, attribute, None)
    if isinstance(values, dict):  # weighted OrderedDict in some locales
        names = [k for k, _ in sorted(values.items(), key=lambda kv: -kv[1])]
    elif isinstance(values, list | tuple):
        names = list(values)
    else:
        names = []
    names = [n for n in names if isinstance(n, str) and n and " " not in n]
    if len(names) < 20:  # lists kept elsewhere (gendered surnames...): sample the generator
        method = getattr(fake, attribute.removesuffix("s").replace("names", "name"))
        names = list(dict.fromkeys(method() for _ in range(600)))
    return names


def load_locale(locale: str, region: str, seed: int) -> LocaleData:
    """Name pools, places and domains for `locale` (a Faker locale such as tr_TR or en_GB)."""
    fake = Faker(locale)
    fake.seed_instance(seed)
    rng = random.Random(f"places:{seed}")
    language = locale.split("_")[0].lower()
    currency = CURRENCIES.get(region, "EUR")
    male_tail = _faker_names(fake, "first_names_male")
    female_tail = _faker_names(fake, "first_names_female")
    last_tail = _faker_names(fake, "last_names")
    rng.shuffle(male_tail)  # Faker's tr_TR lists are alphabetical: order is no frequency signal
    rng.shuffle(female_tail)
    if language == "tr":
        compounds = [p + suffix for p in TR_SURNAME_PREFIXES for suffix in TR_SURNAME_SUFFIXES]
        compounds += [f"{name}oğlu" for name in list(TR_MALE_HEAD)[:24]]
        rng.shuffle(compounds)
        last_tail = TR_LAST_TAIL + [n for n in last_tail if n not in TR_LAST_TAIL] + compounds
        places = [
            Place(city, weight, list(districts), dict(districts), plate)
            for plate, city, weight, districts in TR_CITIES
        ]
        return LocaleData(
            locale, language, region,
            _weighted(TR_MALE_HEAD, male_tail, 0.25), _weighted(TR_FEMALE_HEAD, female_tail, 0.25),
            _weighted(TR_LAST_HEAD, last_tail, 0.62), TR_SECOND_MALE, TR_SECOND_FEMALE,
            TR_NICKNAMES, places, _normalised(TR_EMAIL_DOMAINS), currency, True, fake,
        )
    if language == "en":
        male = _weighted(EN_MALE_HEAD, male_tail, 0.5)
        female = _weighted(EN_FEMALE_HEAD, female_tail, 0.5)
        last = _weighted(EN_LAST_HEAD, last_tail, 0.85)
        nicknames, domains = EN_NICKNAMES, _normalised(EN_EMAIL_DOMAINS)
    else:
        male = _weighted({}, male_tail, 1.0) if male_tail else _weighted({"Alex": 1}, [], 0)
        female = _weighted({}, female_tail, 1.0) if female_tail else male
        last = _weighted({}, last_tail, 1.0) if last_tail else _weighted({"Doe": 1}, [], 0)
        nicknames = {}
        domains = _normalised({fake.free_email_domain(): 1.0 for _ in range(8)} | {"gmail.com": 3})
    places = _faker_places(fake, rng)
    return LocaleData(locale, language, region, male, female, last, (), (), nicknames, places,
                      domains, currency, False, fake)


def _faker_places(fake: Faker, rng: random.Random, count: int = 24) -> list[Place]:
    cities = list(dict.fromkeys(fake.city() for _ in range(count * 2)))[:count]
    return [
        Place(city, 10.0 / (rank + 1), [fake.city() for _ in range(rng.randint(2, 5))])
        for rank, city in enumerate(cities)
    ]


def _normalised(weights: dict[str, float]) -> Pool:
    return list(weights), list(itertools.accumulate(weights.values()))
