"""Comments as a news site's readers and its spammers and trolls send them, for end-to-end tests.

Written for these tests (not taken from the seed set), so the model meets text it was
not trained on.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass

ORDINARY = [
    "The council vote on the bus lanes was closer than I expected. Does anyone know when it takes effect?",
    "Thanks for explaining the budget numbers so clearly, I finally understand where the money goes.",
    "My daughter's school has the same problem with heating. Good to see it reported.",
    "I disagree with the columnist here; the old stadium deal cost the city far more than the new one will.",
    "Great match last night. The second half substitution changed everything.",
    "Small correction: the bridge opened in 1962, not 1966.",
    "Is there a list of the polling stations that moved this year?",
    "We tried the new bakery on Main Street on Saturday and the sourdough was excellent.",
    "The flood maps in the article are really useful, thank you for including them.",
    "Housing costs here have doubled in ten years and wages have not. Something has to give.",
    "I worked at that plant for twenty years; closing it will hurt the whole valley.",
    "Interesting study, but the sample size seems small. Will there be a follow-up?",
    "The mayor is wrong about the parking fees, I think, but I appreciate that she explained her reasons.",
    "Condolences to the family. He coached my brother's team and everyone loved him.",
    "Will the library extend its opening hours over the holidays?",
    "Fair article. Both sides of the zoning debate get a hearing here.",
    "That storm took down two trees on our street, and the crews were out within the hour.",
    "I hope the hospital keeps the maternity ward open; the next one is forty minutes away.",
    "The vaccine clinic at the community centre was quick and well organised.",
    "Does the new recycling schedule apply to apartment buildings too?",
]
SPAM = [
    "Buy cheap viagra and cialis online without prescription at http://cheap-pills.example/buy now!!!",
    "EARN $500 PER DAY working from home, no experience needed, visit http://easy-money.example today",
    "Best essay writing service, cheap and fast: https://essays-cheap.example/order best price guaranteed",
    "Crypto investment doubles your bitcoin in 24 hours, join now at https://btc-double.example/join",
    "Hot singles in your area want to meet you tonight, click http://dating-hot.example",
    "Great post! Very informative. Visit my website for cheap replica watches http://replica-rolex.example",
    "Get a payday loan approved in 5 minutes, bad credit ok, apply at http://fast-loans.example",
    "FREE iPhone giveaway!!! Claim your prize now at http://free-prize.example before it expires",
    "Online casino bonus 200% on first deposit, play slots now at https://lucky-casino.example/bonus",
    "Lose 20 pounds in 2 weeks with this miracle pill, order at http://slim-fast-pills.example",
]
ABUSE = [
    "You are a complete idiot and nobody wants to read your stupid comments.",
    "Shut up, you worthless moron. Go crawl back under your rock.",
    "What a pathetic loser, the writer of this garbage should be fired, idiot.",
    "I know where you live and someone should shut you up for good.",
    "Only a brain-dead imbecile would write something this stupid, you clown.",
    "You disgusting pig, get lost and die.",
    "Are you really this dumb or do you just pretend, you stupid idiot?",
    "Go kill yourself, nobody would miss a worthless piece of trash like you.",
    "You ignorant fool, you are too stupid to have an opinion.",
    "Shut your mouth you filthy moron, you make me sick.",
]
OPENERS = ["", "Honestly, ", "Well, ", "Again: ", "Reading this: ", "So, "]


@dataclass(frozen=True)
class Sample:
    """One comment to post and what kind it is."""

    kind: str
    name: str
    text: str

    @property
    def suspicious(self) -> bool:
        """True for the spam and the abuse, which must never be approved by the model."""
        return self.kind != "ordinary"


def mixed_traffic(count: int) -> list[Sample]:
    """``count`` distinct comments, about 60 % ordinary, 20 % spam, 20 % abuse, interleaved."""
    pools = {
        "ordinary": itertools.cycle(itertools.product(OPENERS, ORDINARY)),
        "spam": itertools.cycle(itertools.product(OPENERS, SPAM)),
        "abuse": itertools.cycle(itertools.product(OPENERS, ABUSE)),
    }
    pattern = ["ordinary", "spam", "ordinary", "abuse", "ordinary"]
    samples = []
    for number in range(count):
        kind = pattern[number % len(pattern)]
        opener, text = next(pools[kind])
        samples.append(Sample(kind, f"Reader {number}", f"{opener}{text}"))
    return samples
