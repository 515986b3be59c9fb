"""A small English grammar that generates the sentences of the synthetic corpus.

People, places, numbers, times, actions, objects and adjectives combine through about thirty
sentence templates into sentences of 4 to 14 words (several hundred distinct words, far more
distinct sentences than any pool needs). Sentences are upper case without punctuation except the
apostrophe, like LibriSpeech transcripts; numbers are written as words.

``make_pools`` draws DISJOINT pools (e.g. test, dev, train, encoder pretraining, LLM text) deterministically
from a seed. Each pool has its own random stream and rejects the sentences of the pools before it, so
a pool does not change when a pool after it is resized.
"""
import random
from typing import Callable, Dict, List, Mapping, Sequence, Set

from espnet_speechllm.utils.cli import UserError

MIN_WORDS = 4
MAX_WORDS = 14

NAMES = """JOHN MARY PETER ANNA DAVID SARAH JAMES EMMA ROBERT LUCY THOMAS GRACE HENRY ALICE WILLIAM
CLARA GEORGE HELEN EDWARD LAURA FRANK JANE SAMUEL KATE DANIEL RUTH MICHAEL SOPHIE ARTHUR MARTHA OLIVER NORA
CHARLES EMILY WALTER ROSE PAUL IRENE MARTIN JULIA SIMON VERA LEO HANNAH VICTOR AMY OSCAR ELLEN HUGO MAYA""".split()

RELATIONS = """BROTHER SISTER FATHER MOTHER UNCLE AUNT COUSIN FRIEND NEIGHBOUR GRANDMOTHER GRANDFATHER
SON DAUGHTER WIFE HUSBAND""".split()

ROLES = """DOCTOR TEACHER FARMER DRIVER BAKER NURSE CAPTAIN PILOT SINGER PAINTER WRITER LAWYER GARDENER
STUDENT MANAGER WAITER POLICEMAN SOLDIER FISHERMAN CARPENTER""".split()

CITIES = """LONDON PARIS BOSTON BERLIN MADRID ROME DUBLIN VIENNA CHICAGO TORONTO SYDNEY LISBON OSLO
ATHENS PRAGUE DENVER SEATTLE GLASGOW WARSAW MONTREAL""".split()

PLACES = """MARKET STATION LIBRARY GARDEN KITCHEN OFFICE SCHOOL HOSPITAL MUSEUM HARBOUR BRIDGE CHURCH
THEATRE RESTAURANT BAKERY FOREST VILLAGE CASTLE BEACH FARM PARK HOTEL AIRPORT FACTORY MOUNTAIN RIVER
VALLEY ISLAND CORNER SQUARE""".split()

EVENTS = """MEETING PARTY CONCERT GAME WEDDING DINNER LECTURE FESTIVAL MATCH TRIP EXAM INTERVIEW""".split()

# (singular, plural)
OBJECTS = [
    ("BOOK", "BOOKS"), ("APPLE", "APPLES"), ("CHAIR", "CHAIRS"), ("TABLE", "TABLES"), ("LETTER", "LETTERS"),
    ("BOTTLE", "BOTTLES"), ("BASKET", "BASKETS"), ("CANDLE", "CANDLES"), ("CUP", "CUPS"), ("PLATE", "PLATES"),
    ("KEY", "KEYS"), ("LAMP", "LAMPS"), ("MAP", "MAPS"), ("COAT", "COATS"), ("HAT", "HATS"),
    ("SHOE", "SHOES"), ("TICKET", "TICKETS"), ("PICTURE", "PICTURES"), ("CLOCK", "CLOCKS"), ("BOX", "BOXES"),
    ("BAG", "BAGS"), ("PEN", "PENS"), ("PENCIL", "PENCILS"), ("WINDOW", "WINDOWS"), ("DOOR", "DOORS"),
    ("BICYCLE", "BICYCLES"), ("CAR", "CARS"), ("BOAT", "BOATS"), ("BLANKET", "BLANKETS"), ("PILLOW", "PILLOWS"),
    ("ORANGE", "ORANGES"), ("LEMON", "LEMONS"), ("CAKE", "CAKES"), ("SANDWICH", "SANDWICHES"), ("EGG", "EGGS"),
    ("FLOWER", "FLOWERS"), ("TREE", "TREES"), ("STONE", "STONES"), ("SHELL", "SHELLS"), ("COIN", "COINS"),
    ("RING", "RINGS"), ("WATCH", "WATCHES"), ("PHONE", "PHONES"), ("CAMERA", "CAMERAS"), ("RADIO", "RADIOS"),
    ("GUITAR", "GUITARS"), ("PIANO", "PIANOS"), ("DRUM", "DRUMS"), ("SONG", "SONGS"), ("STORY", "STORIES"),
    ("NEWSPAPER", "NEWSPAPERS"), ("MAGAZINE", "MAGAZINES"), ("ENVELOPE", "ENVELOPES"), ("PARCEL", "PARCELS"),
    ("UMBRELLA", "UMBRELLAS"), ("GLASS", "GLASSES"), ("KNIFE", "KNIVES"), ("SPOON", "SPOONS"), ("FORK", "FORKS"),
    ("BRUSH", "BRUSHES"), ("MIRROR", "MIRRORS"), ("CARPET", "CARPETS"), ("CURTAIN", "CURTAINS"),
    ("BUCKET", "BUCKETS"), ("LADDER", "LADDERS"), ("HAMMER", "HAMMERS"), ("ROPE", "ROPES"), ("TENT", "TENTS"),
    ("SCARF", "SCARVES"), ("GLOVE", "GLOVES"), ("SHIRT", "SHIRTS"), ("JACKET", "JACKETS"), ("POTATO", "POTATOES"),
    ("TOMATO", "TOMATOES"), ("CARROT", "CARROTS"), ("ONION", "ONIONS"), ("LOAF", "LOAVES"), ("PIE", "PIES"),
]

ANIMALS = [
    ("DOG", "DOGS"), ("CAT", "CATS"), ("HORSE", "HORSES"), ("BIRD", "BIRDS"), ("RABBIT", "RABBITS"),
    ("FOX", "FOXES"), ("SHEEP", "SHEEP"), ("COW", "COWS"), ("DUCK", "DUCKS"), ("GOAT", "GOATS"),
    ("MOUSE", "MICE"), ("OWL", "OWLS"), ("WOLF", "WOLVES"), ("BEAR", "BEARS"), ("FROG", "FROGS"),
]

ADJECTIVES = """RED BLUE GREEN YELLOW BLACK WHITE BROWN GREY PURPLE ORANGE GOLDEN SILVER OLD NEW YOUNG SMALL
LARGE TINY HUGE HEAVY LIGHT WARM COLD HOT COOL SOFT HARD QUIET LOUD BRIGHT DARK CLEAN DIRTY EMPTY FULL
CHEAP EXPENSIVE STRANGE FAMOUS FRIENDLY BEAUTIFUL UGLY SIMPLE CLEVER LAZY BUSY HAPPY SAD TIRED HUNGRY
FRESH SWEET BITTER ROUND SQUARE WOODEN PLASTIC BROKEN LONG SHORT""".split()
# adjectives that read well after "VERY" and "WAS"
STATE_ADJECTIVES = """WARM COLD HOT QUIET LOUD BRIGHT DARK CLEAN DIRTY EMPTY FULL CHEAP EXPENSIVE STRANGE FAMOUS
FRIENDLY BEAUTIFUL SIMPLE BUSY HAPPY SAD TIRED HUNGRY FRESH SWEET BITTER HEAVY SMALL LARGE OLD""".split()

# transitive verbs: (base, past, ing)
VERBS = [
    ("BUY", "BOUGHT", "BUYING"), ("SELL", "SOLD", "SELLING"), ("FIND", "FOUND", "FINDING"),
    ("LOSE", "LOST", "LOSING"), ("BRING", "BROUGHT", "BRINGING"), ("CARRY", "CARRIED", "CARRYING"),
    ("OPEN", "OPENED", "OPENING"), ("CLOSE", "CLOSED", "CLOSING"), ("PAINT", "PAINTED", "PAINTING"),
    ("CLEAN", "CLEANED", "CLEANING"), ("FIX", "FIXED", "FIXING"), ("BREAK", "BROKE", "BREAKING"),
    ("MOVE", "MOVED", "MOVING"), ("WASH", "WASHED", "WASHING"), ("HIDE", "HID", "HIDING"),
    ("DROP", "DROPPED", "DROPPING"), ("CHOOSE", "CHOSE", "CHOOSING"),
    ("SEND", "SENT", "SENDING"), ("KEEP", "KEPT", "KEEPING"), ("BORROW", "BORROWED", "BORROWING"),
    ("WRAP", "WRAPPED", "WRAPPING"), ("COUNT", "COUNTED", "COUNTING"), ("CHECK", "CHECKED", "CHECKING"),
    ("PACK", "PACKED", "PACKING"), ("ORDER", "ORDERED", "ORDERING"), ("PICK UP", "PICKED UP", "PICKING UP"),
    ("PUT AWAY", "PUT AWAY", "PUTTING AWAY"), ("LOOK FOR", "LOOKED FOR", "LOOKING FOR"),
    ("DRAW", "DREW", "DRAWING"), ("WATCH", "WATCHED", "WATCHING"), ("SEE", "SAW", "SEEING"),
    ("NEED", "NEEDED", "NEEDING"), ("WANT", "WANTED", "WANTING"), ("MAKE", "MADE", "MAKING"),
]

MOTION = [
    ("WALK", "WALKED"), ("RUN", "RAN"), ("DRIVE", "DROVE"), ("RIDE", "RODE"), ("TRAVEL", "TRAVELLED"),
    ("HURRY", "HURRIED"), ("GO", "WENT"), ("COME", "CAME"), ("RETURN", "RETURNED"), ("FLY", "FLEW"),
    ("SAIL", "SAILED"), ("CYCLE", "CYCLED"),
]

ADVERBS = """SLOWLY QUICKLY QUIETLY CAREFULLY SUDDENLY HAPPILY CALMLY PROUDLY GENTLY SILENTLY EARLY LATE
ALWAYS NEVER OFTEN SOMETIMES RARELY""".split()

PREPOSITIONS = """ON UNDER BEHIND BESIDE NEAR INSIDE ABOVE BELOW""".split()

DAYS = """MONDAY TUESDAY WEDNESDAY THURSDAY FRIDAY SATURDAY SUNDAY""".split()
MONTHS = """JANUARY FEBRUARY MARCH APRIL MAY JUNE JULY AUGUST SEPTEMBER OCTOBER NOVEMBER DECEMBER""".split()
PARTS_OF_DAY = """MORNING AFTERNOON EVENING NIGHT""".split()
WEATHER = """SUNNY RAINY WINDY CLOUDY FOGGY SNOWY STORMY""".split()

ONES = """ZERO ONE TWO THREE FOUR FIVE SIX SEVEN EIGHT NINE TEN ELEVEN TWELVE THIRTEEN FOURTEEN FIFTEEN SIXTEEN
SEVENTEEN EIGHTEEN NINETEEN""".split()
TENS = "_ _ TWENTY THIRTY FORTY FIFTY SIXTY SEVENTY EIGHTY NINETY".split()


def number_words(n: int) -> List[str]:
    """1 <= n <= 999 in words, British style: 342 -> THREE HUNDRED AND FORTY TWO."""
    if not 0 <= n <= 999:
        raise ValueError(f"number out of range: {n}")
    words: List[str] = []
    if n >= 100:
        words += [ONES[n // 100], "HUNDRED"]
        n %= 100
        if n:
            words.append("AND")
    if n >= 20:
        words.append(TENS[n // 10])
        if n % 10:
            words.append(ONES[n % 10])
    elif n or not words:
        words.append(ONES[n])
    return words


def year_words(year: int) -> List[str]:
    """1900-2039 as spoken: NINETEEN EIGHTY FOUR, TWO THOUSAND AND NINE, TWENTY TWENTY ONE."""
    if 2000 <= year < 2010:
        return ["TWO", "THOUSAND"] + (["AND"] + number_words(year % 100) if year % 100 else [])
    hi, lo = divmod(year, 100)
    if lo == 0:
        return number_words(hi) + ["HUNDRED"]
    return number_words(hi) + (["OH"] + number_words(lo) if lo < 10 else number_words(lo))


def a_or_an(word: str) -> str:
    return "AN" if word[0] in "AEIOU" else "A"


class _Gen:
    """Draws phrases with one random stream."""

    def __init__(self, rng: random.Random):
        self.r = rng

    def pick(self, seq: Sequence):
        return self.r.choice(seq)

    def maybe(self, p: float) -> bool:
        return self.r.random() < p

    # noun phrases
    def person(self) -> List[str]:
        k = self.r.random()
        if k < 0.55:
            return [self.pick(NAMES)]
        if k < 0.75:
            return ["THE", self.pick(ROLES)]
        if k < 0.92:
            return ["MY", self.pick(RELATIONS)]
        return [self.pick(NAMES) + "'S", self.pick(RELATIONS)]

    def adj_noun(self, plural: bool = False, animals: bool = False) -> List[str]:
        sing, plur = self.pick(ANIMALS if animals else OBJECTS)
        noun = plur if plural else sing
        return ([self.pick(ADJECTIVES)] if self.maybe(0.6) else []) + [noun]

    def object_np(self) -> List[str]:
        k = self.r.random()
        if k < 0.45:
            return ["THE"] + self.adj_noun()
        if k < 0.7:
            words = self.adj_noun()
            return [a_or_an(words[0])] + words
        if k < 0.85:
            return self.number(2, 20) + self.adj_noun(plural=True)
        return ["HIS" if self.maybe(0.5) else "HER"] + self.adj_noun()

    def number(self, lo: int = 1, hi: int = 999) -> List[str]:
        # small numbers are more frequent
        n = self.r.randint(lo, min(hi, 20)) if self.maybe(0.6) else self.r.randint(lo, hi)
        return number_words(n)

    def place(self) -> List[str]:
        return ["THE", self.pick(PLACES)]

    def place_phrase(self) -> List[str]:
        k = self.r.random()
        if k < 0.5:
            return [self.pick(["AT", "NEAR", "BEHIND", "INSIDE"])] + self.place()
        if k < 0.8:
            return ["IN", self.pick(CITIES)]
        return ["AT THE", self.pick(PLACES), "IN", self.pick(CITIES)]

    def clock(self) -> List[str]:
        h = number_words(self.r.randint(1, 12))
        k = self.r.random()
        if k < 0.3:
            return h + ["O'CLOCK"]
        if k < 0.5:
            return ["HALF PAST"] + h
        if k < 0.65:
            return ["A QUARTER", self.pick(["PAST", "TO"])] + h
        return h + number_words(self.r.choice([5, 10, 15, 20, 25, 30, 35, 40, 45, 50, 55]))

    def time(self) -> List[str]:
        k = self.r.random()
        if k < 0.25:
            return ["AT"] + self.clock()
        if k < 0.45:
            return ["ON", self.pick(DAYS)] + ([self.pick(PARTS_OF_DAY)] if self.maybe(0.5) else [])
        if k < 0.6:
            return ["IN", self.pick(MONTHS)]
        if k < 0.8:
            return [self.pick(["YESTERDAY", "TOMORROW", "TODAY"])] + (
                [self.pick(PARTS_OF_DAY)] if self.maybe(0.4) else [])
        if k < 0.9:
            return ["LAST" if self.maybe(0.5) else "NEXT", self.pick(DAYS + ["WEEK", "MONTH", "YEAR"])]
        return self.number(2, 12) + [self.pick(["DAYS", "WEEKS", "HOURS", "MINUTES"]), "AGO"]


def _t_did_past(g: _Gen):
    return g.person() + [g.pick(VERBS)[1]] + g.object_np() + (g.place_phrase() if g.maybe(0.5) else []) + (
        g.time() if g.maybe(0.5) else [])


def _t_will(g: _Gen):
    return g.person() + ["WILL", g.pick(VERBS)[0]] + g.object_np() + g.time()


def _t_question_did(g: _Gen):
    return ["DID"] + g.person() + [g.pick(VERBS)[0]] + g.object_np() + (g.place_phrase() if g.maybe(0.6) else [])


def _t_location(g: _Gen):
    return ["THE"] + g.adj_noun() + ["IS", g.pick(PREPOSITIONS), "THE"] + g.adj_noun()


def _t_went(g: _Gen):
    return g.person() + ["AND"] + g.person() + [g.pick(MOTION)[1], "TO"] + (
        g.place() if g.maybe(0.6) else [g.pick(CITIES)]) + (g.time() if g.maybe(0.6) else [])


def _t_need(g: _Gen):
    return [g.pick(["WE", "THEY", "I", "YOU"]), "NEED"] + g.number(2, 60) + g.adj_noun(plural=True) + [
        "FOR THE", g.pick(EVENTS)]


def _t_please(g: _Gen):
    return ["PLEASE", g.pick(VERBS)[0], "THE"] + g.adj_noun() + ["BEFORE"] + (
        g.clock() if g.maybe(0.5) else [g.pick(DAYS)])


def _t_there_are(g: _Gen):
    return ["THERE ARE"] + g.number(2, 200) + g.adj_noun(plural=True, animals=g.maybe(0.3)) + [
        g.pick(["IN", "NEAR", "BEHIND"])] + g.place()


def _t_said(g: _Gen):
    return g.person() + ["SAID THAT THE", g.pick(OBJECTS)[0], "WAS", g.pick(["VERY", "TOO", "QUITE"]),
                         g.pick(STATE_ADJECTIVES)]


def _t_train(g: _Gen):
    return ["THE", g.pick(["TRAIN", "BUS", "FERRY", "FLIGHT"]), "TO", g.pick(CITIES), "LEAVES AT"] + g.clock() + (
        ["ON", g.pick(DAYS)] if g.maybe(0.4) else [])


def _t_lives(g: _Gen):
    sing, plur = g.pick(ANIMALS)
    n = g.r.randint(1, 9)
    return g.person() + ["LIVES IN", g.pick(CITIES), "WITH"] + number_words(n) + [sing if n == 1 else plur]


def _t_bought_at(g: _Gen):
    return [g.pick(["I", "WE", "THEY", "SHE", "HE"]), g.pick(VERBS)[1]] + g.number(2, 30) + g.adj_noun(
        plural=True) + ["AT"] + g.place()


def _t_is_doing(g: _Gen):
    return g.person() + ["IS", g.pick(VERBS)[2]] + g.object_np() + g.place_phrase()


def _t_event(g: _Gen):
    return ["THE", g.pick(EVENTS), g.pick(["STARTS", "ENDS", "BEGINS"]), "AT"] + g.clock() + ["ON", g.pick(DAYS)]


def _t_weather(g: _Gen):
    return ["IT WAS", g.pick(WEATHER), "IN", g.pick(CITIES)] + g.time()


def _t_adverb_motion(g: _Gen):
    return g.person() + [g.pick(ADVERBS), g.pick(MOTION)[1], g.pick(["TO", "ACROSS", "PAST", "AROUND"])] + g.place()


def _t_how_many(g: _Gen):
    return ["HOW MANY", g.pick(OBJECTS)[1], "DID"] + g.person() + [g.pick(VERBS)[0]] + (
        g.time() if g.maybe(0.5) else [])


def _t_has(g: _Gen):
    return ["MY", g.pick(RELATIONS), "HAS"] + g.number(2, 99) + g.adj_noun(plural=True, animals=g.maybe(0.3))


def _t_born(g: _Gen):
    return g.person() + ["WAS BORN IN", g.pick(MONTHS)] + year_words(g.r.randint(1900, 2039)) + (
        ["IN", g.pick(CITIES)] if g.maybe(0.5) else [])


def _t_costs(g: _Gen):
    words = ["THE"] + g.adj_noun() + ["COSTS"] + g.number(1, 999) + [g.pick(["DOLLARS", "POUNDS", "EUROS"])]
    if g.maybe(0.3):
        words += ["AND"] + number_words(g.r.randint(1, 99)) + ["CENTS"]
    return words


def _t_gave(g: _Gen):
    return g.person() + ["GAVE"] + g.person() + g.object_np() + (g.time() if g.maybe(0.4) else [])


def _t_when(g: _Gen):
    return ["WHEN WILL"] + g.person() + [g.pick(MOTION)[0], "TO"] + (g.place() if g.maybe(0.5) else [g.pick(CITIES)])


def _t_not_like(g: _Gen):
    return g.person() + [g.pick(["DOES NOT", "DID NOT"]), g.pick(["LIKE", "WANT", "NEED"])] + g.adj_noun(plural=True)


def _t_animal(g: _Gen):
    return ["THE"] + g.adj_noun(animals=True) + [g.pick(MOTION)[1] if g.maybe(0.5) else "JUMPED",
                                                  g.pick(["ACROSS", "INTO", "PAST", "OVER"])] + g.place()


def _t_called(g: _Gen):
    return g.person() + [g.pick(["CALLED", "VISITED", "MET", "HELPED", "THANKED"])] + g.person() + g.time()


def _t_meet(g: _Gen):
    return ["WE WILL MEET", g.pick(["AT", "NEAR", "OUTSIDE"])] + g.place() + ["AT"] + g.clock()


def _t_room(g: _Gen):
    return ["ROOM"] + number_words(g.r.randint(1, 999)) + ["IS ON THE", g.pick(
        ["FIRST", "SECOND", "THIRD", "FOURTH", "FIFTH", "TOP"]), "FLOOR"]


def _t_adjective_state(g: _Gen):
    return ["THE", g.pick(PLACES), "WAS", g.pick(["VERY", "QUITE", "TOO"]), g.pick(STATE_ADJECTIVES)] + g.time()


def _t_forgot(g: _Gen):
    return g.person() + [g.pick(["FORGOT", "REMEMBERED"])] + ["TO", g.pick(VERBS)[0]] + g.object_np() + (
        g.place_phrase() if g.maybe(0.4) else [])


def _t_took(g: _Gen):
    return g.person() + ["TOOK"] + g.person() + ["TO THE", g.pick(EVENTS)] + (
        ["IN", g.pick(CITIES)] if g.maybe(0.5) else [])


TEMPLATES: List[Callable[[_Gen], List[str]]] = [
    _t_did_past, _t_will, _t_question_did, _t_location, _t_went, _t_need, _t_please, _t_there_are, _t_said,
    _t_train, _t_lives, _t_bought_at, _t_is_doing, _t_event, _t_weather, _t_adverb_motion, _t_how_many,
    _t_has, _t_born, _t_costs, _t_gave, _t_when, _t_not_like, _t_animal, _t_called, _t_meet, _t_room,
    _t_adjective_state, _t_forgot, _t_took,
]


def sentence(rng: random.Random) -> str:
    """One sentence of MIN_WORDS..MAX_WORDS words."""
    g = _Gen(rng)
    while True:
        words = " ".join(g.pick(TEMPLATES)(g)).split()
        if MIN_WORDS <= len(words) <= MAX_WORDS:
            return " ".join(words)


def vocabulary(sample: int = 20000, seed: int = 0) -> Set[str]:
    """The words of ``sample`` generated sentences (with the default, practically every word the
    grammar can produce)."""
    rng = random.Random(f"{seed}:vocabulary")
    words: Set[str] = set()
    for _ in range(sample):
        words.update(sentence(rng).split())
    return words


def make_pools(sizes: Mapping[str, int], seed: int = 0) -> Dict[str, List[str]]:
    """Disjoint pools of distinct sentences, e.g. ``{"test": 300, "dev": 200, "train": 2000}``.

    Deterministic for (names, sizes in order, seed). Pools are filled in the given order; each has its
    own random stream seeded by (seed, name) and skips sentences of the pools before it, so earlier
    pools do not depend on the sizes of later ones.
    """
    taken: Set[str] = set()
    pools: Dict[str, List[str]] = {}
    for name, size in sizes.items():
        if size < 0:
            raise UserError(f"pool {name}: size must be >= 0, got {size}")
        rng = random.Random(f"{seed}:{name}")
        pool: List[str] = []
        seen: Set[str] = set()
        attempts = 0
        max_attempts = 50 * size + 1000
        while len(pool) < size:
            attempts += 1
            if attempts > max_attempts:
                raise UserError(f"pool {name}: found only {len(pool)} new distinct sentences of {size} "
                                f"after {max_attempts} draws; ask for fewer sentences")
            s = sentence(rng)
            if s in taken or s in seen:
                continue
            seen.add(s)
            pool.append(s)
        taken |= seen
        pools[name] = pool
    return pools
