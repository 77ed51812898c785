"""Interactive explorers (ipywidgets 8): step through both sweeps; weigh the modes' costs.

Every frame is computed once and shown by replacing the value of a ``widgets.HTML`` (one DOM
swap: no flicker, no Output widget). Play and the slider are linked in the browser; the
Python side only observes the slider, so tests can drive it with ``step_to`` or the buttons.
"""

from __future__ import annotations

import html
import inspect
from collections.abc import Callable
from typing import Any

import ipywidgets as widgets
import numpy as np

from . import cost
from .graph import TraceTable, forward_sweep, reverse_sweep, trace
from .reverse import ReverseDiff
from .viz import Frame, GraphView, layout_for

__all__ = ["ModeExplorer", "CostExplorer"]

MODES = ("forward", "reverse")


class ModeExplorer:
    """Watch forward mode push tangents and reverse mode pull adjoints, one step at a time.

    ``ModeExplorer(f, 1.5, 0.5)`` traces f at those inputs. The graph and the evaluation
    trace stay in sync; the caption says what the step computed (``v̄₂ += v̄₄ · 1.0000``).
    """

    def __init__(self, f: Callable[..., Any], *inputs: Any, mode: str = "forward",
                 seed: Any = None, interval: int = 900) -> None:
        if mode not in MODES:
            raise ValueError(f"ModeExplorer: mode must be 'forward' or 'reverse', got {mode!r}")
        if not inputs:
            raise ValueError("ModeExplorer: give the inputs to trace f at, e.g. "
                             "ModeExplorer(f, 1.5, 0.5)")
        self.f = f
        leaves = [ReverseDiff(x) for x in inputs]
        output = f(*leaves)
        if not isinstance(output, ReverseDiff):
            raise TypeError(f"ModeExplorer: {_name(f)} returned {type(output).__name__}; it must "
                            "compute with its inputs (use course_ad's functions inside it)")
        self.graph = trace(output)
        self.input_names = _parameter_names(f, len(inputs))
        self._seed = seed
        self._steps = {"forward": forward_sweep(self.graph, seed),
                       "reverse": reverse_sweep(self.graph, 1.0 if seed is None else seed)}
        frames = {m: [Frame.from_step(m, s, len(steps), i) for i, s in enumerate(steps)]
                  for m, steps in self._steps.items()}
        self._frames = frames
        self.layout = layout_for(self.graph, [frames[m][-1] for m in MODES])
        self._svg: dict[str, list[str | None]] = {m: [None] * len(frames[m]) for m in MODES}
        self._tables = {m: TraceTable(self.graph, self._steps[m], m) for m in MODES}
        self.last_error: BaseException | None = None
        self._build(mode, interval)

    # ---- what code and tests use ------------------------------------------------------

    @property
    def mode(self) -> str:
        return self.mode_buttons.value

    @property
    def n_steps(self) -> int:
        return len(self._frames[self.mode])

    @property
    def step(self) -> int:
        """The step shown, counted from 0 (the slider shows it counted from 1)."""
        return self.slider.value - 1

    @property
    def frame(self) -> Frame:
        return self._frames[self.mode][self.step]

    @property
    def steps(self):
        return self._steps[self.mode]

    def step_to(self, i: int) -> None:
        """Show step i (0-based) of the current mode."""
        if not 0 <= i < self.n_steps:
            raise ValueError(f"step_to: step {i} is out of range 0..{self.n_steps - 1}")
        self.slider.value = i + 1
        self._show(i)  # in case the value did not change

    def set_mode(self, mode: str) -> None:
        self.mode_buttons.value = mode

    # ---- display ----------------------------------------------------------------------

    def _repr_mimebundle_(self, **kwargs):
        return self.widget._repr_mimebundle_(**kwargs)

    def _build(self, mode: str, interval: int) -> None:
        self.mode_buttons = widgets.ToggleButtons(options=list(MODES), value=mode,
                                            tooltips=["tangents flow forward",
                                                      "adjoints flow backward"])
        self.play = widgets.Play(min=1, max=2, interval=interval, show_repeat=False)
        self.slider = widgets.IntSlider(min=1, max=2, description="step", readout=True,
                                  continuous_update=True, layout=widgets.Layout(width="320px"))
        self.prev_button = widgets.Button(description="Prev", icon="step-backward",
                                    layout=widgets.Layout(width="80px"))
        self.next_button = widgets.Button(description="Next", icon="step-forward",
                                    layout=widgets.Layout(width="80px"))
        self.caption = widgets.HTML()
        self.graph_html = widgets.HTML()
        self.table_html = widgets.HTML()
        for widget, name in [(self.prev_button, "cad-prev"), (self.next_button, "cad-next"),
                             (self.play, "cad-play"), (self.slider, "cad-slider"),
                             (self.caption, "cad-caption"), (self.graph_html, "cad-graph"),
                             (self.table_html, "cad-table"), (self.mode_buttons, "cad-mode")]:
            widget.add_class(name)
        widgets.jslink((self.play, "value"), (self.slider, "value"))
        self.slider.observe(self._guarded(lambda change: self._show(change["new"] - 1)),
                            names="value")
        self.mode_buttons.observe(self._guarded(lambda change: self._switch()), names="value")
        self.prev_button.on_click(self._guarded(lambda _: self._move(-1)))
        self.next_button.on_click(self._guarded(lambda _: self._move(+1)))
        controls = widgets.HBox([self.mode_buttons, self.play, self.slider, self.prev_button,
                           self.next_button])
        self.widget = widgets.VBox([controls, self.caption, self.graph_html, self.table_html])
        self.widget.add_class("cad-explorer")
        self._switch()

    def _guarded(self, handler: Callable[[Any], None]) -> Callable[[Any], None]:
        """Callback errors are invisible in JupyterLab: keep them and show them."""

        def run(argument: Any) -> None:
            try:
                handler(argument)
            except Exception as error:  # noqa: BLE001 - shown to the user, kept for tests
                self.last_error = error
                self.caption.value = (f"<span style='color:#b3261e'>error: "
                                      f"{html.escape(repr(error))}</span>")

        return run

    def _move(self, delta: int) -> None:
        self.slider.value = min(max(self.slider.value + delta, 1), self.n_steps)

    def _switch(self) -> None:
        self.play.max = self.slider.max = self.n_steps
        if self.slider.value == 1:
            self._show(0)
        else:
            self.slider.value = 1

    def _show(self, i: int) -> None:
        mode = self.mode
        cache = self._svg[mode]
        if cache[i] is None:
            cache[i] = GraphView(self.graph, self._frames[mode][i], layout=self.layout).to_svg()
        self.graph_html.value = f"<div class='cad-svg' data-step='{i}'>{cache[i]}</div>"
        self.table_html.value = self._tables[mode].to_html(active=i)
        self.caption.value = (f"<b class='cad-step'>{html.escape(self._frames[mode][i].caption)}"
                              f"</b>{self._legend(mode)}")

    def _legend(self, mode: str) -> str:
        inputs = ", ".join(f"{n.name} = {name}" for n, name in zip(self.graph.inputs,
                                                                    self.input_names))
        if mode == "forward":
            last = self._steps["forward"][-1].derivatives
            chosen = [name for n, name in zip(self.graph.inputs, self.input_names)
                      if _nonzero(last.get(n.index))]
            what = (f"tangents v̇ = ∂v/∂{'/'.join(chosen) or 'x'}: the input tangents start "
                    "at 1 for that input and 0 for the others")
        else:
            what = "values first, then adjoints v̄ = ∂y/∂v from the output back (ȳ = 1)"
        return f"<br><span style='color:#555'>{html.escape(inputs)} · {what}</span>"


class CostExplorer:
    """A chain of Jacobians J_k ⋯ J₁ with widths on sliders: forward against reverse against
    the best bracketing (multiply-adds of multiplying the given Jacobians, a p×q by q×r
    product costing p·q·r), and measured times of jacfwd against jacrev.

    ``CostExplorer(sizes=(5, 100, 1, 100, 5))`` shows a chain whose cheapest order is neither
    sweep: (J4 J3)(J2 J1)."""

    def __init__(self, sizes: tuple[int, ...] = (32, 16, 16, 1), maximum: int | None = None,
                 measure: bool = True) -> None:
        maximum = max(128, *sizes) if maximum is None else maximum
        self.sliders = [widgets.IntSlider(value=d, min=1, max=maximum, description=f"d{i}",
                                          continuous_update=False) for i, d in enumerate(sizes)]
        self.measure = measure
        self.result = widgets.HTML()
        self.result.add_class("cad-cost")
        for slider in self.sliders:
            slider.observe(lambda _: self.update(), names="value")
        k = len(sizes) - 1
        names = ("input d₀", *[f"hidden d{_sub(i)}" for i in range(1, k)], f"output d{_sub(k)}")
        for slider, name in zip(self.sliders, names):
            slider.description = name
            slider.style.description_width = "90px"
        rows = [widgets.HBox(self.sliders[i:i + 3]) for i in range(0, len(self.sliders), 3)]
        self.widget = widgets.VBox([*rows, self.result])
        self.counts: dict[str, Any] = {}
        self.update()

    @property
    def sizes(self) -> list[int]:
        return [s.value for s in self.sliders]

    def _repr_mimebundle_(self, **kwargs):
        return self.widget._repr_mimebundle_(**kwargs)

    def update(self) -> None:
        sizes = self.sizes
        best = cost.best_bracketing(sizes)
        self.counts = {"forward": cost.forward_cost(sizes), "reverse": cost.reverse_cost(sizes),
                       "best": best.cost, "bracketing": best.text}
        if self.measure:
            self.counts.update(cost.time_jacobians(sizes, budget=0.15))
        self.result.value = _cost_html(sizes, self.counts)


def _sub(i: int) -> str:
    return str(i).translate(str.maketrans("0123456789", "₀₁₂₃₄₅₆₇₈₉"))


def _plural(n: int, word: str) -> str:
    return f"{n:,} {word}" + ("" if n == 1 else "s")


def _cost_html(sizes: list[int], counts: dict[str, Any]) -> str:
    k = len(sizes) - 1
    chain = " ".join(f"J{i}<sub>{sizes[i]}×{sizes[i - 1]}</sub>" for i in range(k, 0, -1))
    forward_note = (f"carries d₀ = {_plural(sizes[0], 'tangent column')}: "
                    f"d₀ · Σ<sub>i=2..{k}</sub> d<sub>i</sub>d<sub>i−1</sub>")
    reverse_note = (f"carries d{_sub(k)} = {_plural(sizes[-1], 'adjoint row')}: "
                    f"d{_sub(k)} · Σ<sub>i=1..{k - 1}</sub> d<sub>i</sub>d<sub>i−1</sub>")
    best_note = html.escape(counts["bracketing"])
    if counts["best"] < min(counts["forward"], counts["reverse"]):
        best_note += " (<b>neither sweep</b>: a mixed order is cheapest)"
    rows = [("forward (right to left)", counts["forward"], forward_note),
            ("reverse (left to right)", counts["reverse"], reverse_note),
            ("best bracketing", counts["best"], best_note)]
    top = max(max(r[1] for r in rows), 1)
    bars = "".join(
        f"<tr><td>{name}</td><td style='text-align:right'>{value:,}</td><td>"
        f"<div style='background:#4c78a8;height:10px;width:{max(2, 240 * value // top)}px'>"
        f"</div></td><td style='color:#444'>{note}</td></tr>" for name, value, note in rows)
    timing = ""
    if "jacfwd" in counts:
        faster = "jacfwd" if counts["jacfwd"] < counts["jacrev"] else "jacrev"
        timing = (f"<p>measured on tanh(W{k} ⋯ tanh(W1 x)): jacfwd "
                  f"{counts['jacfwd'] * 1e3:.2f} ms, jacrev {counts['jacrev'] * 1e3:.2f} ms: "
                  f"<b>{faster}</b> is faster here</p>")
    return (f"<div style='font-size:14px'><p>J = {chain}: multiply-adds to multiply the given "
            f"Jacobians, a p×q by q×r product costing p·q·r</p>"
            f"<table>{bars}</table>{timing}</div>")


def _parameter_names(f: Callable[..., Any], n: int) -> list[str]:
    try:
        names = list(inspect.signature(f).parameters)[:n]
    except (TypeError, ValueError):
        names = []
    return names + [f"x{i + 1}" for i in range(len(names), n)]


def _nonzero(x: Any) -> bool:
    return x is not None and bool(np.any(np.asarray(x) != 0))


def _name(f: Callable[..., Any]) -> str:
    return getattr(f, "__name__", "f")
