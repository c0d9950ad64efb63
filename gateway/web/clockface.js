// The Dutch clock face on a <canvas>: a ring of 100 lamps where the lit lamp is the price's fen
// (it runs once round the dial per yuan, as on the floor clocks of Aalsmeer and Kunming), and an
// inner arc that shows how far the price has fallen from the round's start price.
// The price digits are a DOM element laid over the canvas, so they can be read and tested.

const LAMPS = 100;
const TRAIL = 10;

const COLORS = {
  lampOff: '#243049',
  lampOn: '#ffe066',
  sold: '#ffc233',
  unsold: '#7d8699',
  track: '#1b2438',
  label: '#7f8bab',
};

export class ClockFace {
  constructor(canvas) {
    this.canvas = canvas;
    this.ctx = canvas.getContext('2d');
    this.size = 0;
    this.last = '';
  }

  /** Matches the backing store to the CSS size and the screen's pixel ratio. */
  fit() {
    const css = Math.round(this.canvas.clientWidth || 240);
    const ratio = window.devicePixelRatio || 1;
    const px = Math.round(css * ratio);
    if (this.canvas.width !== px || this.canvas.height !== px) {
      this.canvas.width = px;
      this.canvas.height = px;
      this.last = '';
    }
    this.size = css;
    this.ratio = ratio;
  }

  /**
   * `view`: {phase: 'idle'|'pre_roll'|'running'|'pause', priceFen, startFen, result: 'sold'|'unsold'|null,
   * pulse: 0..1}. Draws only when something visible changed.
   */
  draw(view) {
    this.fit();
    const key = `${view.phase}|${view.priceFen}|${view.startFen}|${view.result}|${Math.round((view.pulse ?? 0) * 20)}|${this.canvas.width}`;
    if (key === this.last) return;
    this.last = key;
    const { ctx, size, ratio } = this;
    ctx.setTransform(ratio, 0, 0, ratio, 0, 0);
    ctx.clearRect(0, 0, size, size);
    const c = size / 2;
    const r = size / 2 - 6;

    // Dial.
    const dial = ctx.createRadialGradient(c, c, r * 0.1, c, c, r);
    dial.addColorStop(0, '#17203a');
    dial.addColorStop(1, '#0c1222');
    ctx.fillStyle = dial;
    ctx.beginPath();
    ctx.arc(c, c, r, 0, Math.PI * 2);
    ctx.fill();
    ctx.lineWidth = 2;
    ctx.strokeStyle = view.result === 'sold' ? COLORS.sold : '#2c3a5c';
    ctx.stroke();

    const hasPrice = typeof view.priceFen === 'number';
    const lit = hasPrice ? ((view.priceFen % LAMPS) + LAMPS) % LAMPS : null;
    const running = view.phase === 'running';
    const lampR = r * 0.86;
    const dot = Math.max(2, r * 0.035);
    for (let i = 0; i < LAMPS; i++) {
      const angle = -Math.PI / 2 + (i / LAMPS) * Math.PI * 2;
      const x = c + Math.cos(angle) * lampR;
      const y = c + Math.sin(angle) * lampR;
      let color = COLORS.lampOff;
      let radius = i % 10 === 0 ? dot * 1.25 : dot;
      if (lit !== null) {
        // The lamps just above the price (where it came from) glow fading: the motion trail.
        const behind = (i - lit + LAMPS) % LAMPS;
        if (behind === 0) {
          color = view.result === 'sold' ? COLORS.sold : view.result === 'unsold' ? COLORS.unsold : COLORS.lampOn;
          radius = dot * 1.9;
        } else if (running && behind <= TRAIL) {
          color = `rgba(255, 224, 102, ${(0.75 * (TRAIL - behind + 1)) / (TRAIL + 1)})`;
        } else if (view.result === 'sold' && (view.pulse ?? 0) > 0) {
          color = `rgba(255, 194, 51, ${0.15 + 0.5 * view.pulse})`;
        }
      }
      ctx.fillStyle = color;
      ctx.beginPath();
      ctx.arc(x, y, radius, 0, Math.PI * 2);
      ctx.fill();
    }

    // Fen labels every 10 lamps.
    ctx.fillStyle = COLORS.label;
    ctx.font = `${Math.max(9, Math.round(r * 0.075))}px system-ui, sans-serif`;
    ctx.textAlign = 'center';
    ctx.textBaseline = 'middle';
    for (let i = 0; i < LAMPS; i += 10) {
      const angle = -Math.PI / 2 + (i / LAMPS) * Math.PI * 2;
      ctx.fillText(String(i), c + Math.cos(angle) * r * 0.72, c + Math.sin(angle) * r * 0.72);
    }

    // How far the price has fallen: a full arc at the start price, shrinking toward zero.
    const arcR = r * 0.6;
    ctx.lineCap = 'round';
    ctx.lineWidth = Math.max(3, r * 0.05);
    ctx.strokeStyle = COLORS.track;
    ctx.beginPath();
    ctx.arc(c, c, arcR, 0, Math.PI * 2);
    ctx.stroke();
    if (hasPrice && typeof view.startFen === 'number' && view.startFen > 0) {
      const share = Math.max(0, Math.min(1, view.priceFen / view.startFen));
      ctx.strokeStyle = view.result === 'sold' ? COLORS.sold : view.phase === 'pre_roll' ? '#5b6b91' : fallColor(share);
      ctx.beginPath();
      ctx.arc(c, c, arcR, -Math.PI / 2, -Math.PI / 2 + share * Math.PI * 2);
      ctx.stroke();
    }
  }
}

/** Green at the start price, through amber, to red as the price falls. */
function fallColor(share) {
  const hue = Math.round(8 + 122 * share);
  return `hsl(${hue}, 80%, 55%)`;
}
