"""Label alignment: pseudo-statistics self-learning (Sim2SG's "analysis" and "synthesis" steps).

Analysis: the current model predicts scene graphs on the *unlabelled* target images; confident
objects are lifted back to 3-D scenes through the target camera (its mounting pose is calibration,
not a label; ``reconstruct_scene``) and aggregated into pseudo-statistics, from which the
generator's content distributions are re-fitted (``refit_content``), never dropping a class below a
floor share of its source count.

Synthesis: the reconstructed scenes, plus fresh scenes from the re-fitted generator, are rendered
in the SOURCE appearance. Their labels are exact (the simulator knows the scene), their content
follows the target, and their appearance is what the model already reads — so training on them
closes the content ("label") gap without ever looking at a target label.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Optional, Sequence

import numpy as np

from sim2sg_core.scene_graph import SceneGraph
from sim2sg_core.sim import Simulator
from sim2sg_core.sim.domains import ContentConfig
from sim2sg_core.sim.generate import SceneGenerator
from sim2sg_core.sim.reconstruct import PseudoStatistics, reconstruct_scene, refit_content, visibility_ratios


@dataclass
class AnalysisResult:
    """What one analysis round learnt from the target predictions."""

    #: One reconstructed scene per target image with at least one confident object.
    scenes: list = field(default_factory=list)
    #: Re-fitted content distributions (``ContentConfig``), or the source ones when not re-fitted.
    content: Optional[ContentConfig] = None
    #: Confident predicted objects per class name (what the statistics were built from).
    class_counts: dict = field(default_factory=dict)
    #: Number of target images analysed and confident objects kept.
    images: int = 0
    objects: int = 0


def rescale_graph(graph: SceneGraph, width: int, height: int) -> SceneGraph:
    """``graph`` with boxes scaled to a ``width``×``height`` image (target images of another size)."""
    if graph.image_width == width and graph.image_height == height:
        return graph
    if graph.image_width <= 0 or graph.image_height <= 0:
        raise ValueError("cannot rescale a scene graph without image_width/image_height")
    sx, sy = width / graph.image_width, height / graph.image_height
    objs = [
        dataclasses.replace(o, box=(o.box[0] * sx, o.box[1] * sy, o.box[2] * sx, o.box[3] * sy)) for o in graph.objects
    ]
    return dataclasses.replace(graph, objects=objs, image_width=int(width), image_height=int(height))


def confident_class_counts(graphs: Sequence[SceneGraph], score_threshold: float) -> dict:
    counts: dict = {}
    for g in graphs:
        for o in g.objects:
            if o.score >= score_threshold:
                counts[o.class_name] = counts.get(o.class_name, 0) + 1
    return counts


class LabelAligner:
    """Pseudo-statistics analysis and source-appearance synthesis for one environment.

    ``simulator`` is a source-domain :class:`sim2sg_core.sim.Simulator`: its appearance is what
    label-aligned images are drawn in. ``camera`` is the *target* camera (intrinsics at the
    simulator's image size, mounting height and pitch): pseudo labels are lifted to 3-D with it and
    reconstructions are rendered through it, so the label-aligned images share the target's
    geometry. Default: the simulator's intrinsics at the source domain's mean pose.
    """

    def __init__(
        self,
        *,
        simulator,
        camera=None,
        score_threshold: float = 0.5,
        refit: bool = True,
        refit_blend: float = 1.0,
        min_class_fraction: float = 0.0,
    ):
        self.sim = simulator
        self.env = simulator.env  # EnvironmentConfig
        self.camera = camera if camera is not None else simulator.camera.with_pose(*simulator.content.camera.mean_pose)
        self.source_content = simulator.content
        self.score_threshold = float(score_threshold)
        self.refit = bool(refit)
        self.refit_blend = float(refit_blend)
        #: A class's re-fitted count never drops below this fraction of its source count: a class
        #: the detector stops finding under the appearance gap is not evidence that it is absent,
        #: and dropping it would teach the model to miss it for good (a self-training collapse).
        self.min_class_fraction = float(min_class_fraction)
        #: The generator's current content: starts at the source's, re-fitted every analysis round.
        self.content = simulator.content
        self._visibility: Optional[dict] = None

    @property
    def visibility(self) -> dict:
        """Labelled / generated objects per class in the source domain: turns the *visible* counts
        the pseudo-statistics see into the generator's Poisson means."""
        if self._visibility is None:
            probe = Simulator(
                env=self.env, domain=self.sim.domain, seed=self.sim.seed + 99991, image_size=self.sim.image_size
            )
            self._visibility = visibility_ratios(probe, n=64)
        return self._visibility

    # -- analysis --------------------------------------------------------------------------------
    def analyse(self, predictions: Sequence[SceneGraph]) -> AnalysisResult:
        """Pseudo-statistics of confident predictions → reconstructed scenes + re-fitted content."""
        w, h = self.camera.width, self.camera.height
        graphs = [rescale_graph(g, w, h) for g in predictions]
        scenes = []
        for g in graphs:
            scene = reconstruct_scene(g, self.camera, self.env, self.score_threshold)
            if scene.objects:
                scenes.append(scene)
        content = self.content
        if self.refit and graphs:
            stats = PseudoStatistics.collect(graphs, self.camera, self.env, self.score_threshold)
            content = refit_content(self.content, stats, visibility=self.visibility, blend=self.refit_blend)
            if self.min_class_fraction > 0:
                src = self.source_content.classes
                floor = self.min_class_fraction
                content = dataclasses.replace(
                    content,
                    classes={
                        n: dataclasses.replace(cc, count_mean=max(cc.count_mean, floor * src[n].count_mean))
                        for n, cc in content.classes.items()
                    },
                )
            self.content = content
        counts = confident_class_counts(graphs, self.score_threshold)
        return AnalysisResult(
            scenes=scenes, content=content, class_counts=counts, images=len(graphs), objects=sum(counts.values())
        )

    # -- synthesis -------------------------------------------------------------------------------
    def synthesis_scenes(
        self, analysis: AnalysisResult, count: int, generated_fraction: float, rng: np.random.Generator
    ) -> list:
        """``count`` scene descriptions: reconstructions (cycled) + draws from the re-fitted generator."""
        n_gen = int(round(count * generated_fraction)) if analysis.content is not None else 0
        if not analysis.scenes:
            n_gen = count  # nothing confident to reconstruct: the generator is all we have
        scenes = []
        if count - n_gen > 0:
            order = rng.permutation(len(analysis.scenes))
            for k in range(count - n_gen):
                base = analysis.scenes[int(order[k % len(order)])]
                # a new appearance seed per copy: same content, different lighting/noise draws
                scenes.append(dataclasses.replace(base, seed=int(rng.integers(0, 2**31 - 1))))
        if n_gen:
            gen = SceneGenerator(env=self.env, content=analysis.content or self.source_content, camera=self.camera)
            scenes.extend(gen.generate(rng) for _ in range(n_gen))
        return scenes

    def render(self, scenes: Sequence) -> tuple[list[np.ndarray], list[SceneGraph]]:
        """Draw scenes in the source appearance; labels come from the simulator (exact)."""
        images, graphs = [], []
        for s in scenes:
            img, g = self.sim.render(s)
            images.append(img)
            graphs.append(g)
        return images, graphs


def class_balanced_scores(
    graphs: Sequence[SceneGraph], threshold: float, fraction: float
) -> tuple[list[SceneGraph], dict[int, float]]:
    """Per-class confidence for pseudo-labels (class-balanced self-training, Zou et al., ECCV 2018).

    Class ``c``'s threshold ``t_c`` is the score above which ``fraction`` of its predictions lie, capped at
    ``threshold``. Object scores are re-mapped per class, monotonically and piecewise linearly, so that
    ``t_c`` lands on ``threshold``: ``[t_c, 1] -> [threshold, 1]`` and ``[0, t_c] -> [0, threshold]``. Everything
    downstream keeps using the one global threshold. Returns the re-scored graphs (relationships
    untouched) and ``{class_id: t_c}``.
    """
    by_class: dict[int, list[float]] = {}
    for g in graphs:
        for o in g.objects:
            by_class.setdefault(o.class_id, []).append(float(o.score))
    if fraction <= 0:  # no class is lowered
        return list(graphs), {c: float(threshold) for c in by_class}
    thr = {c: min(float(threshold), float(np.quantile(v, 1.0 - fraction))) for c, v in by_class.items() if v}

    def remap(score: float, t: float) -> float:
        if t >= threshold:
            return score
        if score >= t:
            return threshold + (score - t) * (1.0 - threshold) / max(1.0 - t, 1e-9)
        return score * threshold / max(t, 1e-9)

    out = [
        dataclasses.replace(
            g, objects=[dataclasses.replace(o, score=remap(float(o.score), thr[o.class_id])) for o in g.objects]
        )
        for g in graphs
    ]
    return out, thr
