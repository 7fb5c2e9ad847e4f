"""References to mediaGenerationIds: what a node's request names on one account.

An image made on the executing account is named by its own id, never uploaded. Anything
else (an asset, an image made on another account, an upscale's result, whose answer
has no id) is uploaded to that account once and the id kept in the cache: concurrent
nodes that need the same bytes on the same account share one upload. A ``STEP.pick``
reference means the image of that node a reviewer picked (``RECIPE.picks.yaml``):
while there is no pick, or the pick names bytes the node no longer has (it was
re-made: a stale pick), the node waits for review and nothing is guessed. A 403 says
an id the request sent is not usable on that account (DESIGN section 1): the ids of
that request are marked refused there, so exactly those bytes are uploaded again,
once per 403, and every later request uses the new id.

The request is built in the plan's dialect: 2026-07 sends every reference as
``reference_N`` and ``captchaRetry``; an upscale node becomes an ``Upscale`` of its
source's id (the source's own account is where it runs: ``home``).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass

from flowpipe.api import FlowClient, ImageRequest
from flowpipe.dialects import dialect
from flowpipe.engine.state import NodeState
from flowpipe.errors import FlowpipeError, PlanError
from flowpipe.imagebytes import sniff_image, strip_packet
from flowpipe.planner import Node, Plan, Ref
from flowpipe.store.picks import Picks
from flowpipe.store.responses import ResponseCache, sha256_hex

__all__ = ["NeedsReview", "Request", "Resolver", "Upscale"]


@dataclass(frozen=True, slots=True)
class Upscale:
    """``POST /images/upscale`` of ``media_id`` (valid on the executing account)."""

    media_id: str
    resolution: str
    captcha_retry: int | None = None


Request = ImageRequest | Upscale


class NeedsReview(Exception):
    """A ``STEP.pick`` reference cannot resolve yet: no pick, or a stale one."""

    def __init__(self, message: str, *, stale: bool) -> None:
        super().__init__(message)
        self.message = message
        self.stale = stale


class Resolver:
    """Resolves references for one run; ``refuse`` takes a 403 into account."""

    def __init__(
        self,
        plan: Plan,
        cache: ResponseCache,
        states: Mapping[str, NodeState],
        *,
        on_upload: Callable[[str, str], None],
        picks: Picks | None = None,
    ) -> None:
        self.plan = plan
        self.cache = cache
        self.states = states
        self.picks = picks
        self._on_upload = on_upload
        self._uploads: dict[tuple[str, str], asyncio.Future[str]] = {}
        # A 403 refuses ids, and through them the bytes they name on that account: every
        # id known for those bytes there (the generated one, an earlier upload) is then
        # suspect, and the bytes go up once more; the new id is the one used from then on.
        self._sent: dict[tuple[str, str], str] = {}  # (account, id) -> sha of its bytes
        self._stale: set[tuple[str, str]] = set()  # (account, sha) whose old ids a 403 hit
        self._fresh: dict[tuple[str, str], str] = {}  # (account, sha) -> id uploaded since

    def hashes(self, node: Node) -> dict[Ref, str]:
        """The SHA-256 of the bytes behind each reference.

        LookupError if an image is missing; NeedsReview if a pick is missing or stale.
        """
        hashes: dict[Ref, str] = {}
        for ref in node.refs:
            if ref.kind == "asset":
                assert ref.asset is not None
                hashes[ref] = self.plan.assets[ref.asset].sha256
                continue
            assert ref.node is not None
            gen = self.states[ref.node].generation
            if gen is None:  # pragma: no cover - readiness guarantees it
                raise LookupError(f"{ref.text}: node '{ref.node}' has no images")
            index = self.index_of(ref)
            if index >= len(gen.images):
                raise LookupError(
                    f"{ref.text}: node '{ref.node}' returned {len(gen.images)} image(s), "
                    f"so index {index} does not exist"
                )
            hashes[ref] = gen.images[index].sha256
        return hashes

    def home(self, node: Node, usable: Collection[str]) -> str | None:
        """The one account ``node`` must run on, if any: an upscale's, where its source
        was made (its id is valid there, and an uploaded copy may not be upscalable)."""
        if node.source is None or node.source.node is None:
            return None
        gen = self.states[node.source.node].generation
        return gen.account if gen is not None and gen.account in usable else None

    def index_of(self, ref: Ref) -> int:
        """The image a node reference means: its index, or the node's valid pick."""
        if not ref.pick:
            assert ref.index is not None
            return ref.index
        assert ref.node is not None
        pick = self.picks.get(ref.node) if self.picks is not None else None
        if pick is None or pick.image is None:
            raise NeedsReview(f"{ref.text}: no image of '{ref.node}' is picked yet", stale=False)
        gen = self.states[ref.node].generation
        assert gen is not None
        if pick.stale(img.sha256 for img in gen.images):
            raise NeedsReview(
                f"{ref.text}: the pick of '{ref.node}' is stale: image {pick.image} "
                f"({(pick.sha256 or '')[:12]}) is not what '{ref.node}' made now", stale=True,
            )
        return pick.image

    async def request(
        self, node: Node, state: NodeState, account: str, client: FlowClient, *,
        captcha_retry: int | None = None,
    ) -> Request:
        """The API request for ``node`` on ``account``, every reference as a usable id.

        ``captcha_retry`` (the run's option) wins over the node's ``captchaRetry``.
        """
        captcha = captcha_retry if captcha_retry is not None else node.captcha_retry
        if node.kind == "upscale":
            self._check_upscalable(node)
        ids = list(await asyncio.gather(*(  # uploads go up together
            self._media_id(ref, state.ref_hashes[ref], account, client) for ref in node.refs
        )))
        if node.kind == "upscale":
            assert node.resolution is not None
            return Upscale(ids[0], node.resolution, captcha)
        style = ids.pop(0) if node.style else None
        return ImageRequest(
            prompt=node.prompt,
            model=state.attempt.model,
            aspect_ratio=node.aspect_ratio,
            count=node.count,
            seed=node.seed,
            email=account,
            style_reference=style,
            context_references=tuple(ids),
            dialect=node.dialect,
            captcha_retry=captcha,
        )

    def _check_upscalable(self, node: Node) -> None:
        """The plan checked the source's model; a moderation fallback may have changed it."""
        assert node.source is not None and node.source.node is not None
        gen = self.states[node.source.node].generation
        spoken = dialect(node.dialect)
        model = spoken.models.get(gen.model_used) if gen is not None else None
        if gen is not None and (model is None or not model.upscalable):
            raise PlanError(
                f"step {node.id!r}: upscale {node.source.text!r}: the image was made by "
                f"{gen.model_used}, which cannot be upscaled",
                node.location,
                hint="upscale an image of a model that can be, or drop its fallback_model",
            )

    def refuse(self, account: str, request: Request) -> None:
        """A 403 answered ``request`` on ``account``: the bytes its ids name go up again.

        A refused id older than an upload made since (a request that was already out)
        changes nothing: the new id stands, so one 403 costs at most one upload.
        """
        ids = (
            (request.media_id,) if isinstance(request, Upscale)
            else (request.style_reference, *request.context_references)
        )
        for media_id in ids:
            sha = self._sent.get((account, media_id)) if media_id else None
            key = (account, sha or "")
            if sha is not None and self._fresh.get(key) in (None, media_id):
                self._fresh.pop(key, None)
                self._stale.add(key)

    async def _media_id(self, ref: Ref, sha: str, account: str, client: FlowClient) -> str:
        key = (account, sha)
        media_id = self._fresh.get(key)
        if media_id is None and key not in self._stale:
            media_id = self._known(ref, sha, account)
        if not media_id:
            upload = self._uploads.get(key)
            if upload is None:  # nobody is uploading these bytes to this account yet
                upload = asyncio.ensure_future(self._upload(ref, sha, account, client))
                self._uploads[key] = upload
                upload.add_done_callback(lambda done: self._forget(key, done))
            media_id = await asyncio.shield(upload)
        self._sent[(account, media_id)] = sha
        return media_id

    def _known(self, ref: Ref, sha: str, account: str) -> str | None:
        """An id ``account`` already has for these bytes: its own image's, or an upload's."""
        if ref.kind == "node":
            assert ref.node is not None
            gen = self.states[ref.node].generation
            if gen is not None and gen.account == account:
                own = gen.images[self.index_of(ref)].media_generation_id  # "" for an upscale's
                if own:
                    return own
        return self.cache.get_upload(account, sha)

    def _forget(self, key: tuple[str, str], done: asyncio.Future[str]) -> None:
        if self._uploads.get(key) is done:
            del self._uploads[key]

    async def _upload(self, ref: Ref, sha: str, account: str, client: FlowClient) -> str:
        """Upload the bytes behind ``ref`` to ``account`` and remember the id."""
        data, mime = self._bytes_of(ref, sha)
        uploaded = await client.upload_asset(account, data, mime)
        if (account, sha) in self._stale:
            self._fresh[(account, sha)] = uploaded.media_generation_id
        self.cache.put_upload(account, sha, uploaded.media_generation_id)
        self._on_upload(account, sha)
        return uploaded.media_generation_id

    def _bytes_of(self, ref: Ref, sha: str) -> tuple[bytes, str]:
        if ref.kind == "asset":
            assert ref.asset is not None
            asset = self.plan.assets[ref.asset]
            data = strip_packet(asset.path.read_bytes())  # the bytes its hash names
            if sha256_hex(data) != sha:
                raise FlowpipeError(
                    f"asset '{ref.asset}' changed on disk during the run", hint="run again"
                )
            return data, asset.mime
        cached = self.cache.get_image(sha)
        if cached is None:
            raise FlowpipeError(f"{ref.text}: image {sha[:12]} is missing from the cache")
        return cached, f"image/{sniff_image(cached) or 'jpeg'}"
