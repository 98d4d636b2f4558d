"""The embedded default corpus: assistant-style utterances, generated deterministically.

Every utterance carries a label for each of four tasks, because that is the serving
situation the multi-task model is for: one utterance, every task's prediction.
  domain     6 classes   what area the request is in
  intent     18 classes  what the user wants done
  sentiment  3 classes   the user's mood (negative / neutral / positive)
  urgency    regression  how soon it must happen, 0 (whenever) .. 1 (right now)

Labels come from the templates and fillers that build each utterance, plus a little noise
(sentiment and urgency markers are sampled independently of the intent), so no task is
trivially solved from another's label.
"""

from __future__ import annotations

import random

from mtserve.core.tasks import Split, TaskData, TaskSpec

# domain -> intent -> templates; {x} slots are filled from SLOTS
INTENTS: dict[str, dict[str, list[str]]] = {
    "weather": {
        "weather_now": [
            "what's the weather in {city}",
            "is it raining in {city}",
            "how hot is it outside in {city}",
            "tell me the current temperature in {city}",
            "do i need a jacket in {city} today",
        ],
        "weather_forecast": [
            "what's the forecast for {city} {day}",
            "will it snow in {city} {day}",
            "is it going to rain {day} in {city}",
            "weather outlook for {city} {day}",
        ],
        "weather_alert": [
            "are there any storm warnings for {city}",
            "any severe weather alerts near {city}",
            "is there a flood warning in {city}",
        ],
    },
    "music": {
        "play_music": [
            "play some {genre}",
            "put on {artist}",
            "play {artist} in the {room}",
            "i want to hear some {genre} music",
            "start my {genre} playlist",
        ],
        "pause_music": [
            "pause the music",
            "stop playing {artist}",
            "turn the music off in the {room}",
            "mute the song",
        ],
        "music_info": [
            "who sings this song",
            "what album is this {artist} track from",
            "what's this song called",
            "when did {artist} release this",
        ],
    },
    "calendar": {
        "create_event": [
            "schedule a meeting with {person} {day} at {time}",
            "add lunch with {person} to my calendar {day}",
            "book a call with {person} at {time} {day}",
            "put the dentist on my calendar {day} at {time}",
        ],
        "cancel_event": [
            "cancel my meeting with {person}",
            "delete the {time} appointment {day}",
            "remove lunch with {person} from my calendar",
        ],
        "query_calendar": [
            "what's on my calendar {day}",
            "am i free {day} at {time}",
            "when is my next meeting with {person}",
            "do i have anything {day}",
        ],
    },
    "shopping": {
        "add_to_list": [
            "add {item} to my shopping list",
            "put {item} on the grocery list",
            "i need to buy {item}",
            "remember to get {item}",
        ],
        "order_status": [
            "where is my order of {item}",
            "when will my {item} arrive",
            "track my package",
            "has my {item} order shipped",
        ],
        "reorder": ["order more {item}", "buy {item} again", "reorder the {item} from last time"],
    },
    "travel": {
        "book_flight": [
            "book a flight to {city} {day}",
            "find me a plane ticket to {city}",
            "i need to fly to {city} {day}",
            "get me the cheapest flight to {city}",
        ],
        "book_hotel": [
            "book a hotel in {city} for {day}",
            "find a room in {city}",
            "reserve a hotel near {city} center",
            "i need a place to stay in {city} {day}",
        ],
        "travel_info": [
            "how long is the flight to {city}",
            "do i need a visa for {city}",
            "what time is it in {city}",
            "what's the currency in {city}",
        ],
    },
    "smart_home": {
        "lights": [
            "turn on the lights in the {room}",
            "dim the {room} lights",
            "switch off the {room} light",
            "set the {room} lights to blue",
        ],
        "thermostat": [
            "set the thermostat to {temp} degrees",
            "make the {room} warmer",
            "turn the heat down to {temp}",
            "what's the temperature in the {room}",
        ],
        "lock": ["lock the front door", "is the back door locked", "unlock the garage", "lock all the doors"],
    },
}

SLOTS = {
    "city": [
        "paris",
        "tokyo",
        "new york",
        "berlin",
        "lagos",
        "lima",
        "sydney",
        "toronto",
        "mumbai",
        "oslo",
        "cairo",
        "seoul",
    ],
    "day": [
        "today",
        "tomorrow",
        "on monday",
        "on friday",
        "this weekend",
        "next week",
        "tonight",
        "on the 14th",
    ],
    "genre": ["jazz", "rock", "classical", "hip hop", "lofi", "country", "techno", "blues"],
    "artist": [
        "miles davis",
        "taylor swift",
        "the beatles",
        "beyonce",
        "radiohead",
        "bach",
        "adele",
        "drake",
    ],
    "room": ["kitchen", "bedroom", "living room", "office", "bathroom", "garage"],
    "person": ["anna", "the team", "my boss", "dr lee", "mom", "carlos", "the landlord", "priya"],
    "time": ["9am", "noon", "3 pm", "half past four", "8 in the evening", "10:30"],
    "item": [
        "milk",
        "batteries",
        "coffee beans",
        "dog food",
        "paper towels",
        "a phone charger",
        "eggs",
        "shampoo",
    ],
    "temp": ["68", "70", "72", "19", "21", "65"],
}

# sentiment markers: (label, prefixes, suffixes)
SENTIMENT = {
    "negative": (
        [
            "ugh ",
            "this is so annoying, ",
            "i'm really frustrated, ",
            "come on, ",
            "seriously, ",
            "for the third time, ",
        ],
        [
            " you never get this right",
            ", this is useless",
            " ugh",
            ", i'm so fed up",
            ", why is this so hard",
        ],
    ),
    "neutral": (["", "", "hey, ", "ok ", "assistant, ", "hi, "], ["", "", "", " please", ""]),
    "positive": (
        ["awesome, ", "thanks so much, ", "i love this, ", "great, could you ", "yay, "],
        [" thank you!", ", you're the best", " :)", ", that would be wonderful", ", love it"],
    ),
}

# urgency markers with the value they contribute (0 = whenever .. 1 = right now)
URGENCY = [
    (
        0.05,
        ["whenever you get a chance ", "no rush, but ", "at some point "],
        [" sometime", " when you can", " no hurry"],
    ),
    (0.35, ["", "", ""], ["", "", ""]),
    (0.65, ["soon please, ", "could you quickly "], [" soon", " fairly soon"]),
    (
        0.95,
        ["right now ", "urgent: ", "immediately ", "asap "],
        [" right now", " immediately", " asap", " this instant"],
    ),
]

TASKS = {
    "domain": TaskSpec("domain", tuple(INTENTS), "accuracy"),
    "intent": TaskSpec("intent", tuple(i for d in INTENTS.values() for i in d), "accuracy"),
    "sentiment": TaskSpec("sentiment", tuple(SENTIMENT), "accuracy"),
    "urgency": TaskSpec("urgency", None, "pearson"),
}


def _utterance(rng: random.Random) -> tuple[str, dict]:
    domain = rng.choice(list(INTENTS))
    intent = rng.choice(list(INTENTS[domain]))
    text = rng.choice(INTENTS[domain][intent])
    for slot, values in SLOTS.items():
        while "{" + slot + "}" in text:
            text = text.replace("{" + slot + "}", rng.choice(values), 1)
    sentiment = rng.choices(list(SENTIMENT), weights=[0.3, 0.45, 0.25])[0]
    s_pre, s_suf = SENTIMENT[sentiment]
    u_value, u_pre, u_suf = rng.choice(URGENCY)
    # markers go either before or after the request, so position alone is no cue
    if rng.random() < 0.5:
        text = rng.choice(u_pre) + text + rng.choice(s_suf)
    else:
        text = rng.choice(s_pre) + text + rng.choice(u_suf)
    urgency = min(1.0, max(0.0, u_value + rng.gauss(0, 0.05)))
    if rng.random() < 0.3:
        text = text.capitalize()
    if rng.random() < 0.03:  # label noise: a sentiment the surface does not show
        sentiment = rng.choice(list(SENTIMENT))
    return " ".join(text.split()), {
        "domain": domain,
        "intent": intent,
        "sentiment": sentiment,
        "urgency": round(urgency, 4),
    }


def generate(n_train: int = 3000, n_dev: int = 600, seed: int = 13) -> dict[str, TaskData]:
    """All four tasks over one utterance set: {task: TaskData}. Same seed, same corpus, on every machine."""
    rng = random.Random(seed)
    seen: set[str] = set()
    rows: list[tuple[str, dict]] = []
    attempts = 0
    while len(rows) < n_train + n_dev:
        attempts += 1
        if attempts > 50 * (n_train + n_dev):
            raise RuntimeError("corpus templates cannot produce that many distinct utterances")
        text, labels = _utterance(rng)
        if text in seen:  # a dev utterance never also appears in train
            continue
        seen.add(text)
        rows.append((text, labels))
    train_rows, dev_rows = rows[:n_train], rows[n_train:]
    out = {}
    for name, spec in TASKS.items():

        def split(rs: list[tuple[str, dict]], name: str = name, spec: TaskSpec = spec) -> Split:
            labels = [r[1][name] if spec.is_regression else spec.labels.index(r[1][name]) for r in rs]
            return Split([r[0] for r in rs], None, labels)

        out[name] = TaskData(spec, split(train_rows), split(dev_rows), [f"embedded corpus, seed {seed}"])
    return out
