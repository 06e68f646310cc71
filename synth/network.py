"""A simulated camera network: who is seen where and when.

People enter the network at random times, walk from camera to camera along links
with log-normal transit times (some links one-way, some two-way), sometimes come
back to the same camera after a loop, and are detected a few times per visit. Each
camera records in several sessions ("sequences"), each with its own frame clock
(starting at a random frame); the sessions of all cameras follow one schedule, but
each camera starts and stops up to `session_jitter_s` off it, so a person's
sightings in two cameras sometimes fall into different sequences; and some cameras
number their sequences from a later number (their s3 was recorded with the others'
s1), so many true cross-camera pairs cross sequence labels, as in Market-1501. Recording gaps lose
sightings. The ground truth (links, transit times, sessions) is returned so that a
learned ST model can be checked against it.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Dict, List, Tuple

import numpy as np


@dataclass(frozen=True)
class NetworkParams:
    cameras: int = 6
    sessions: int = 3                # recording sessions ("sequences") per camera
    duration_s: float = 1800.0       # simulated wall-clock time
    gap_s: float = 20.0              # pause between two sessions of a camera
    session_jitter_s: float = 60.0   # per-camera shift of the shared session boundaries
    renumber_prob: float = 0.25      # share of cameras whose sequence numbers start later
    renumber_max: int = 2            # by at most this much (c4s3 recorded with c1s1)
    fps: float = 25.0
    transit_s: Tuple[float, float] = (10.0, 60.0)   # range of mean transit times
    transit_cv: float = 0.25         # spread (coefficient of variation) of a link
    one_way: float = 0.3             # share of corridor links walked one way only
    extra_links: int = 2             # shortcuts besides the corridor
    exit_prob: float = 0.35          # leave the network after a visit
    revisit_prob: float = 0.1        # come back to the same camera after a loop
    revisit_s: Tuple[float, float] = (60.0, 240.0)
    dwell_s: Tuple[float, float] = (1.0, 6.0)      # time spent in a camera's view
    images_per_visit: Tuple[int, int] = (1, 4)
    detect_prob: float = 0.9         # a visit yields detections at all
    min_visits: int = 2
    max_visits: int = 6


@dataclass(frozen=True)
class Link:
    src: int
    dst: int
    mean_s: float
    sd_s: float


@dataclass(frozen=True)
class Session:
    camera: int
    sequence: int
    start_s: float
    end_s: float
    first_frame: int                 # frame number at start_s (the session's clock)

    def frame_at(self, t: float, fps: float) -> int:
        """The session clock's frame number at time t (seconds)."""
        return self.first_frame + int(round((t - self.start_s) * fps))


@dataclass(frozen=True)
class Sighting:
    person: int                      # index of the simulated person, 0-based
    camera: int
    sequence: int
    frame: int
    time_s: float


@dataclass
class Network:
    params: NetworkParams
    links: List[Link]
    sessions: List[Session]
    entries: List[int]

    def truth(self) -> Dict:
        """JSON-ready ground truth: links with transit times, sessions with clocks."""
        return {"params": asdict(self.params),
                "links": [asdict(l) for l in self.links],
                "sessions": [asdict(s) for s in self.sessions],
                "entries": list(self.entries)}


def build_network(p: NetworkParams, rng: np.random.Generator) -> Network:
    """Cameras along a corridor in random order, neighbours linked (two-way, or one
    way with probability `one_way`), plus `extra_links` shortcuts; per-camera
    sessions with their own boundaries and clocks."""
    cams = [int(c) + 1 for c in rng.permutation(p.cameras)]
    links: Dict[Tuple[int, int], Link] = {}

    def add(a: int, b: int, two_way: bool) -> None:
        mean = float(rng.uniform(*p.transit_s))
        for s, d in ((a, b), (b, a)) if two_way else ((a, b),):
            if (s, d) not in links:
                links[(s, d)] = Link(s, d, mean, mean * p.transit_cv)

    for a, b in zip(cams[:-1], cams[1:]):
        add(a, b, rng.random() >= p.one_way)
    for _ in range(p.extra_links):
        a, b = rng.choice(cams, 2, replace=False)
        add(int(a), int(b), rng.random() < 0.5)
    # Make every camera reachable forward, so nobody is stuck.
    outgoing = {s for s, _ in links}
    for c in cams:
        if c not in outgoing:
            others = [x for x in cams if x != c]
            add(c, int(rng.choice(others)), False)
    sessions = []
    shared = np.sort(rng.uniform(0.15, 0.85, p.sessions - 1)) * p.duration_s
    for c in range(1, p.cameras + 1):
        cuts = np.sort(np.clip(shared + rng.uniform(-1, 1, len(shared)) * p.session_jitter_s,
                               0.0, p.duration_s))
        bounds = np.concatenate([[0.0], cuts, [p.duration_s]])
        shift = int(rng.integers(1, p.renumber_max + 1)) \
            if p.renumber_max > 0 and rng.random() < p.renumber_prob else 0
        for s in range(p.sessions):
            start = bounds[s] + (p.gap_s / 2 if s > 0 else 0.0)
            end = bounds[s + 1] - (p.gap_s / 2 if s < p.sessions - 1 else 0.0)
            if end > start:
                sessions.append(Session(c, s + 1 + shift, float(start), float(end),
                                        int(rng.integers(1, 500))))
    entries = sorted({cams[0], cams[-1], int(rng.choice(cams))})
    return Network(p, sorted(links.values(), key=lambda l: (l.src, l.dst)),
                   sessions, entries)


def lognormal(rng: np.random.Generator, mean: float, sd: float) -> float:
    """A log-normal draw with the given mean and standard deviation."""
    if sd <= 0:
        return mean
    s2 = np.log1p((sd / mean) ** 2)
    return float(rng.lognormal(np.log(mean) - s2 / 2, np.sqrt(s2)))


def walk(net: Network, rng: np.random.Generator) -> List[Tuple[int, float]]:
    """One person's visits (camera, arrival time in seconds)."""
    p = net.params
    out_links: Dict[int, List[Link]] = {}
    for l in net.links:
        out_links.setdefault(l.src, []).append(l)
    cam = int(rng.choice(net.entries))
    t = float(rng.uniform(0, p.duration_s))
    visits = [(cam, t)]
    while len(visits) < p.max_visits:
        if len(visits) >= p.min_visits and rng.random() < p.exit_prob:
            break
        t += float(rng.uniform(*p.dwell_s))
        if rng.random() < p.revisit_prob:
            t += float(rng.uniform(*p.revisit_s))
        else:
            options = out_links.get(cam, [])
            if not options:
                break
            link = options[int(rng.integers(len(options)))]
            t += lognormal(rng, link.mean_s, link.sd_s)
            cam = link.dst
        visits.append((cam, t))
    return visits


def session_at(net: Network, camera: int, t: float) -> Session | None:
    for s in net.sessions:
        if s.camera == camera and s.start_s <= t < s.end_s:
            return s
    return None


def simulate_sightings(net: Network, people: int,
                       rng: np.random.Generator) -> List[Sighting]:
    """Every detection of `people` walkers: a few per visit, during the visit's
    dwell time, stamped with the camera session's sequence and frame clock."""
    p = net.params
    out: List[Sighting] = []
    for person in range(people):
        for cam, t in walk(net, rng):
            if rng.random() >= p.detect_prob:
                continue
            dwell = float(rng.uniform(*p.dwell_s))
            k = int(rng.integers(p.images_per_visit[0], p.images_per_visit[1] + 1))
            for dt in np.sort(rng.uniform(0, dwell, k)):
                ts = t + float(dt)
                sess = session_at(net, cam, ts)
                if sess is None:
                    continue  # camera not recording (gap or after the end)
                out.append(Sighting(person, cam, sess.sequence, sess.frame_at(ts, p.fps),
                                    ts))
    return out


def random_sightings(net: Network, n: int, rng: np.random.Generator) -> List[Sighting]:
    """`n` detections at uniformly random recorded places and times (distractors,
    junk)."""
    p = net.params
    lengths = np.array([s.end_s - s.start_s for s in net.sessions])
    out = []
    for i in rng.choice(len(net.sessions), n, p=lengths / lengths.sum()):
        s = net.sessions[int(i)]
        ts = float(rng.uniform(s.start_s, s.end_s))
        out.append(Sighting(-1, s.camera, s.sequence, s.frame_at(ts, p.fps), ts))
    return out
