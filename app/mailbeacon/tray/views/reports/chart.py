"""A small bar chart drawn with QPainter (QtCharts is not part of PySide6-Essentials).

``BarChart.set_data(labels, series)``: one group of bars per label; series with
the same ``stack`` number are stacked in one bar, different stacks stand side by
side. The y axis gets round steps (1, 2, 5 x 10^n); x labels are thinned so they
never overlap. Hovering a bar shows its numbers as a tooltip. Everything drawn
is plain text.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

from PySide6.QtCore import QEvent, QLocale, QPoint, QRectF, QSize, Qt
from PySide6.QtGui import QColor, QHelpEvent, QPainter, QPaintEvent, QPalette
from PySide6.QtWidgets import QToolTip, QWidget

MARGIN = 8
TICKS = 4
LEGEND_SWATCH = 10


@dataclass(frozen=True, slots=True)
class Series:
    """One series: a value per label, its colour, and the bar it stacks in."""

    name: str
    values: tuple[int, ...]
    color: QColor
    stack: int = 0


def nice_ceiling(value: float) -> float:
    """The top of the axis: TICKS steps of 1, 2 or 5 x 10^n (at least 1: counts are whole),
    reaching ``value``."""
    step = max(1.0, value / TICKS)
    power = 10.0 ** math.floor(math.log10(step))
    for factor in (1, 2, 5, 10):
        if step <= factor * power:
            return factor * power * TICKS
    return 10 * power * TICKS  # pragma: no cover - the loop always returns


class BarChart(QWidget):
    """Grouped and stacked bars; ``empty_text`` shows when there is nothing to draw."""

    def __init__(self, empty_text: str = "Nothing to show.", parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.empty_text = empty_text
        self.labels: tuple[str, ...] = ()
        self.series: tuple[Series, ...] = ()
        self._bars: list[tuple[QRectF, int]] = []  # hit areas and their label index
        self.setMouseTracking(True)
        self.setMinimumHeight(180)

    def set_data(self, labels: Sequence[str], series: Sequence[Series]) -> None:
        """Show ``series`` over ``labels`` (each series has one value per label)."""
        for one in series:
            if len(one.values) != len(labels):
                raise ValueError(f"series {one.name!r} has {len(one.values)} values "
                                 f"for {len(labels)} labels")
        self.labels = tuple(labels)
        self.series = tuple(series)
        self.update()

    def sizeHint(self) -> QSize:
        return QSize(640, 260)

    def stacks(self) -> list[int]:
        """The stack numbers, in drawing order."""
        return sorted({s.stack for s in self.series})

    def stack_total(self, index: int, stack: int) -> int:
        """The height of one bar."""
        return sum(s.values[index] for s in self.series if s.stack == stack)

    def maximum(self) -> int:
        """The tallest bar."""
        return max(
            (self.stack_total(i, k) for i in range(len(self.labels)) for k in self.stacks()),
            default=0,
        )

    def tooltip_at(self, point: QPoint) -> str:
        """The numbers of the label group under ``point`` ("" when none)."""
        for rect, index in self._bars:
            if rect.contains(point.toPointF()):
                parts = [f"{s.name}: {s.values[index]}" for s in self.series]
                return f"{self.labels[index]}\n" + "\n".join(parts)
        return ""

    def event(self, event: QEvent) -> bool:
        if event.type() == QEvent.Type.ToolTip and isinstance(event, QHelpEvent):
            text = self.tooltip_at(event.pos())
            if text:
                QToolTip.showText(event.globalPos(), text, self)
            else:
                QToolTip.hideText()
            return True
        return super().event(event)

    # ------------------------------------------------------------ drawing

    def paintEvent(self, _event: QPaintEvent) -> None:
        painter = QPainter(self)
        try:
            painter.setRenderHint(QPainter.RenderHint.Antialiasing, False)
            self._paint(painter)
        finally:
            painter.end()

    def _paint(self, painter: QPainter) -> None:
        palette = self.palette()
        text_color = palette.color(QPalette.ColorRole.WindowText)
        grid_color = palette.color(QPalette.ColorGroup.Disabled, QPalette.ColorRole.WindowText)
        painter.fillRect(self.rect(), palette.color(QPalette.ColorRole.Base))
        metrics = painter.fontMetrics()
        line = metrics.height()
        self._bars = []
        legend_bottom = self._paint_legend(painter, text_color, line)
        top_value = nice_ceiling(self.maximum())
        axis_width = metrics.horizontalAdvance(f"{int(top_value):,}") + MARGIN
        plot = QRectF(
            MARGIN + axis_width,
            legend_bottom + MARGIN,
            max(10, self.width() - 2 * MARGIN - axis_width),
            max(10, self.height() - legend_bottom - 2 * MARGIN - line - 4),
        )
        if not self.labels or self.maximum() == 0:
            painter.setPen(text_color)
            painter.drawText(plot, Qt.AlignmentFlag.AlignCenter, self.empty_text)
            return
        self._paint_axis(painter, plot, top_value, text_color, grid_color)
        self._paint_bars(painter, plot, top_value)
        self._paint_labels(painter, plot, text_color)

    def _paint_legend(self, painter: QPainter, text_color: QColor, line: int) -> float:
        x = float(MARGIN)
        y = float(MARGIN)
        metrics = painter.fontMetrics()
        for one in self.series:
            width = LEGEND_SWATCH + 4 + metrics.horizontalAdvance(one.name) + 3 * MARGIN
            if x + width > self.width() - MARGIN and x > MARGIN:
                x, y = float(MARGIN), y + line + 2
            painter.fillRect(QRectF(x, y + (line - LEGEND_SWATCH) / 2, LEGEND_SWATCH,
                                    LEGEND_SWATCH), one.color)
            painter.setPen(text_color)
            painter.drawText(QRectF(x + LEGEND_SWATCH + 4, y, width, line),
                             Qt.AlignmentFlag.AlignVCenter | Qt.AlignmentFlag.AlignLeft, one.name)
            x += width
        return y + line

    def _paint_axis(self, painter: QPainter, plot: QRectF, top_value: float,
                    text_color: QColor, grid_color: QColor) -> None:
        metrics = painter.fontMetrics()
        for tick in range(TICKS + 1):
            value = top_value * tick / TICKS
            y = plot.bottom() - plot.height() * tick / TICKS
            painter.setPen(grid_color)
            painter.drawLine(int(plot.left()), int(y), int(plot.right()), int(y))
            painter.setPen(text_color)
            # The locale's separators (QLocale's default follows the rep's language).
            locale = QLocale()
            label = (locale.toString(int(value)) if value == int(value)
                     else locale.toString(value, "f", 1))
            height = metrics.height()
            painter.drawText(
                QRectF(MARGIN, y - height / 2, plot.left() - MARGIN - 4, height),
                Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter, label,
            )

    def _paint_bars(self, painter: QPainter, plot: QRectF, top_value: float) -> None:
        stacks = self.stacks()
        group = plot.width() / len(self.labels)
        bar = max(1.0, group * 0.8 / len(stacks))
        for index in range(len(self.labels)):
            left = plot.left() + group * index + group * 0.1
            self._bars.append((QRectF(plot.left() + group * index, plot.top(), group,
                                      plot.height()), index))
            for position, stack in enumerate(stacks):
                x = left + bar * position
                base = plot.bottom()
                for one in self.series:
                    if one.stack != stack or one.values[index] <= 0:
                        continue
                    height = plot.height() * one.values[index] / top_value
                    painter.fillRect(QRectF(x, base - height, max(1.0, bar - 1), height),
                                     one.color)
                    base -= height

    def _paint_labels(self, painter: QPainter, plot: QRectF, text_color: QColor) -> None:
        metrics = painter.fontMetrics()
        group = plot.width() / len(self.labels)
        widest = max(metrics.horizontalAdvance(label) for label in self.labels) + MARGIN
        every = max(1, math.ceil(widest / group))
        painter.setPen(text_color)
        for index in range(0, len(self.labels), every):
            center = plot.left() + group * (index + 0.5)
            painter.drawText(
                QRectF(center - widest / 2, plot.bottom() + 4, widest, metrics.height()),
                Qt.AlignmentFlag.AlignHCenter | Qt.AlignmentFlag.AlignTop, self.labels[index],
            )
