"""Testbench for the DMA engine (``dma_engine`` with AxiRam, ``dma_hbm`` with the stub).

Agents ticked by the ClockedTB loop: descriptor source, completion sink, the SRAM
model behind ``m_sram_rd`` / ``m_sram_wr`` (1-cycle read latency, byte strobes) and, on
``dma_engine``, an AXI protocol checker on ``m_axi``. The golden model :mod:`models.dma`
predicts the completion code and every byte of both memories; :meth:`DmaTB.run` checks
them (untouched bytes included).
"""
from __future__ import annotations

import logging

from cocotb.triggers import ClockCycles, FallingEdge
from cocotbext.axi import AxiBus, AxiRam

from models import dma as model
from models.dma import DmaDir, DmaError
from rtl.formats import dma_desc_layout, dma_done_layout
from tb.common.clocked import ClockedTB
from tb.common.scoreboard import Scoreboard
from tb.common.stream import Pacer, StreamSink, StreamSource, signal_int
from tb.common.axi_check import AxiProtocolChecker
from tb.hbm.tb import attach_slave_checker, set_pause

__all__ = ["DmaTB", "SramModel", "AcceptLog", "AXI_PREFIX"]

#: cocotbext-axi prefix of the engine's ``m_axi`` port (Verilog ``m_axi__awaddr`` ...).
AXI_PREFIX = "m_axi_"


class AcceptLog:
    """Cycle of every descriptor the engine accepted (ticked after the descriptor source)."""

    def __init__(self, source: StreamSource):
        self.source, self.cycles = source, []

    def drive(self, cycle):
        pass

    def sample(self, cycle):
        if self.source.sent > len(self.cycles):
            self.cycles.append(cycle)


class SramModel:
    """On-chip SRAM behind the engine's ``m_sram_rd`` / ``m_sram_wr`` ports (amaranth.lib
    memory port signatures): a bytearray, read data one cycle after ``en``, byte-strobed
    writes (``m_sram_wr__en`` has a bit per byte)."""

    def __init__(self, dut, size: int, W: int):
        self.dut, self.W = dut, W
        self.mem = bytearray(size)
        self._rd = None
        self._rdata = dut.m_sram_rd__data
        self._rdata.value = 0
        self._s = [dut.m_sram_rd__en, dut.m_sram_rd__addr, dut.m_sram_wr__en,
                   dut.m_sram_wr__addr]
        self._wdata = dut.m_sram_wr__data

    def drive(self, cycle):
        if self._rd is not None:
            a = self._rd * self.W
            self._rdata.value = int.from_bytes(self.mem[a:a + self.W], "little")
            self._rd = None

    def sample(self, cycle):
        re, raddr, strb, addr = (signal_int(s) for s in self._s)
        if re:
            self._rd = raddr
        if strb:
            W = self.W
            data = signal_int(self._wdata).to_bytes(W, "little")
            a = addr * W
            if strb == (1 << W) - 1:
                self.mem[a:a + W] = data
            else:
                for i in range(W):
                    if strb >> i & 1:
                        self.mem[a + i] = data[i]


class DmaTB(ClockedTB):
    """Parameters: ``dut`` of ``dma_engine`` or ``dma_hbm``; ``stall`` on every stream/channel."""

    def __init__(self, dut, *, stall: float = 0.0, burst: int = 1):
        super().__init__(dut)
        self.dcfg, self.hcfg = self.config.dma, self.config.hbm
        self.W = self.hcfg.data_bytes
        self.system = hasattr(dut, "i_bd_we")
        self.sb = Scoreboard("dma completions", self.log)
        self.done = []
        self.desc = self.add(StreamSource(dut, "i_desc", dma_desc_layout()))
        self.accepts = self.add(AcceptLog(self.desc))
        self.sink = self.add(StreamSink(dut, "o_done", dma_done_layout(), on_item=self._on_done))
        self.sram = self.add(SramModel(dut, self.dcfg.sram_bytes, self.W))
        self.set_window(0, 0)
        if self.system:
            for n in ("i_err_kind", "i_err_base", "i_err_limit", "i_bd_we", "i_bd_addr",
                      "i_bd_wdata"):
                getattr(dut, n).value = 0
            self.hbm_size = self.hcfg.total_bytes
            self.mirror = bytearray(self.hbm_size)
            self.ram = None
            self.check = None
            # the stub's side of the link (dma_hbm; other systems name it differently)
            scope = getattr(dut, "hbm", None)
            self.slave = None
            if scope is not None and hasattr(scope, "s_axi__arvalid"):
                self.slave = attach_slave_checker(self, scope, self.hcfg)
            else:
                self.log.info("no HBM stub port 'hbm.s_axi' in %s: subordinate-side AXI "
                              "checker not attached", dut._name)
        else:
            self.hbm_size = min(self.hcfg.total_bytes, 64 * 1024)
            # Amaranth names the ports m_axi__<signal>; cocotb-bus adds the second "_"
            self.ram = AxiRam(AxiBus.from_prefix(dut, AXI_PREFIX), dut.clk, dut.rst,
                              size=self.hbm_size)
            logging.getLogger(f"cocotb.{dut._name}.{AXI_PREFIX}").setLevel(logging.WARNING)
            self.check = self.add(AxiProtocolChecker(dut, "m_axi", self.W,
                                                     self.dcfg.max_burst_beats))
            self.slave = None
        self.shadow = bytearray(self.hbm_size)     # HBM contents as last written/read back
        self.set_window(0, self.hbm_size)
        self.set_stalls(stall, burst)

    # --- configuration --------------------------------------------------------------
    def set_window(self, base: int, limit: int):
        self.win = (base, limit)
        self.dut.i_win_base.value = base
        self.dut.i_win_limit.value = limit

    def set_stalls(self, stall: float, burst: int = 1):
        self.desc.pacer = Pacer(stall, burst=burst, rng=self.rng)
        self.sink.pacer = Pacer(stall, burst=burst, rng=self.rng)
        if self.ram is not None:
            set_pause((self.ram.write_if.aw_channel, self.ram.write_if.w_channel,
                       self.ram.write_if.b_channel, self.ram.read_if.ar_channel,
                       self.ram.read_if.r_channel), self.rng, stall, burst)

    def _on_done(self, item, cycle):
        self.done.append((item, cycle))
        self.sb.got({"tag": item["tag"], "err": item["err"]}, cycle)

    # --- HBM side memory access --------------------------------------------------------
    async def hbm_write(self, addr: int, data: bytes):
        self.shadow[addr:addr + len(data)] = data
        if self.ram is not None:
            self.ram.write(addr, data)
            return
        from tb.hbm.tb import HbmTB
        await HbmTB.bd_write(self, addr, data)

    async def hbm_read(self, addr: int, n: int) -> bytes:
        if self.ram is not None:
            return bytes(self.ram.read(addr, n))
        from tb.hbm.tb import HbmTB
        return await HbmTB.bd_read(self, addr, n)

    # --- one descriptor end to end ---------------------------------------------------
    async def run(self, d: model.Descriptor, *, hbm_before: bytes | None = None,
                  expect_err: int | None = None, timeout: int = 30_000,
                  check_data: bool = True):
        """Send ``d``, wait for its completion, check code and both memories byte for byte.

        ``hbm_before``: HBM contents of [0, hbm_size) before the copy (read back when None).
        Returns (code, cycles from descriptor accepted to completion).
        """
        # on the HBM stub a LOAD is proven not to write HBM by its write counter, which
        # saves two backdoor passes over the whole memory per descriptor
        skip_hbm = self.system and d.dir == DmaDir.LOAD
        if skip_hbm:
            wr0 = signal_int(self.dut.o_perf_wr_bytes)
            hbm_before = bytes(self.shadow)
        elif hbm_before is None:
            hbm_before = await self.hbm_read(0, self.hbm_size)
        hbm = bytearray(hbm_before)
        sram = bytearray(self.sram.mem)
        code, idx = self._model(d, hbm, sram)
        issued = code == DmaError.OK or idx is not None
        if expect_err is not None and code == DmaError.OK:
            code = expect_err
        if self.check is not None:
            self.check.expect(d if issued else None, self.dcfg, self.win, idx)
        self.sb.expect({"tag": d.tag, "err": code}, f"descriptor {d}")
        n0 = len(self.done)
        self.desc.send(d.to_payload())
        try:
            await self.wait_until(lambda: len(self.done) > n0, timeout=timeout,
                                  what=f"completion of {d}")
        except AssertionError:
            self.log.error("engine state at timeout: %s", self.debug_state())
            if self.check is not None:
                self.log.error("AXI checker: errors %s, R left %s, plan %s", self.check.errors[:5],
                               list(self.check.r_left), list(self.check.ax_plan)[:3])
            raise
        first = self.desc.last_fire
        cycles = self.done[n0][1] - first + 1
        got = self.done[n0][0]["err"]
        if check_data and (got == DmaError.OK or got not in (DmaError.SLVERR, DmaError.DECERR)):
            after = hbm if skip_hbm else await self.hbm_read(0, self.hbm_size)
            self.shadow[:] = after
            self._compare("HBM", after, hbm, d)
            self._compare("SRAM", self.sram.mem, sram, d)
        elif check_data and got in (DmaError.SLVERR, DmaError.DECERR):
            # nothing outside the destination may change; the destination may be partial
            after = hbm_before if skip_hbm else await self.hbm_read(0, self.hbm_size)
            self.shadow[:] = after
            dst_is_sram = d.dir == DmaDir.LOAD
            self._compare_outside("SRAM" if dst_is_sram else "HBM",
                                  self.sram.mem if dst_is_sram else after,
                                  sram if dst_is_sram else hbm_before, d, idx)
            self._compare("HBM" if dst_is_sram else "SRAM",
                          after if dst_is_sram else self.sram.mem,
                          hbm_before if dst_is_sram else sram, d)
        if skip_hbm:
            assert signal_int(self.dut.o_perf_wr_bytes) == wr0, f"a LOAD wrote HBM: {d}"
        return got, cycles

    async def run_batch(self, descs: list[model.Descriptor], *, errors: dict | None = None,
                        timeout: int = 60_000):
        """Queue ``descs`` back to back (the engine overlaps them), check every completion
        code in order and both memories against the models applied in order.

        ``errors``: {index: code} of descriptors that must fail with an AXI error
        (injected by the caller); their destination may be partial, so it is left out of
        the comparison (keep it disjoint from other destinations). Returns (codes,
        cycles from the first descriptor accepted to the last completion).
        """
        errors = errors or {}
        hbm_before = await self.hbm_read(0, self.hbm_size)
        hbm, sram = bytearray(hbm_before), bytearray(self.sram.mem)
        exempt = {"HBM": set(), "SRAM": set()}
        for i, d in enumerate(descs):
            code, idx = self._model(d, hbm, sram)
            issued = code == DmaError.OK or idx is not None
            if issued and i in errors:
                code = errors[i]
                for _s, t in model.rows(d, idx):
                    exempt["SRAM" if d.dir == DmaDir.LOAD else "HBM"].update(
                        range(t, t + d.row_bytes))
            if self.check is not None:
                self.check.expect(d if issued else None, self.dcfg, self.win, idx)
            self.sb.expect({"tag": d.tag, "err": code}, f"batch #{i} {d}")
        n0, a0 = len(self.done), len(self.accepts.cycles)
        for d in descs:
            self.desc.send(d.to_payload())
        await self.wait_until(lambda: len(self.done) >= n0 + len(descs), timeout=timeout,
                              what=f"{len(descs)} completions of a batch")
        codes = [item["err"] for item, _ in self.done[n0:]]
        cycles = self.done[-1][1] - self.accepts.cycles[a0] + 1
        after = await self.hbm_read(0, self.hbm_size)
        self.shadow[:] = after
        for what, got, exp in (("HBM", after, hbm), ("SRAM", self.sram.mem, sram)):
            if bytes(got) == bytes(exp):
                continue
            bad = [i for i in range(len(exp)) if got[i] != exp[i] and i not in exempt[what]]
            if bad:
                raise AssertionError(f"{what}: {len(bad)} bytes differ from the models applied "
                                     f"in order, first at {bad[0]:#x}; seed {self.seed}")
        return codes, cycles

    def _model(self, d, hbm, sram):
        """Apply ``d`` to the reference memories: (completion code, index list or None).

        The index list is read from ``hbm`` before the copy (an indexed descriptor's
        indices must not lie in its own destination); it is not None for every indexed
        descriptor whose bursts are issued (a plane stop included)."""
        code = model.check_descriptor(self.dcfg, self.W, d, *self.win)
        if code != DmaError.OK:
            return code, None
        idx = model.index_list(d, hbm) if d.index else None
        return model.apply(d, hbm, sram, win_base=self.win[0], win_limit=self.win[1]), idx

    def debug_state(self) -> dict:
        out = {}
        scope = getattr(self.dut, "dma", self.dut)
        for n in ("state", "outstanding", "ax_valid", "dp_store", "pend", "done_cnt",
                  "c_err_seen", "gcnt", "off", "yi", "zi", "rbeat", "sbeat", "inflight",
                  "pv", "iz", "icred", "ifl", "pm", "ax_idx"):
            try:
                out[n] = str(getattr(scope, n).value)
            except AttributeError:
                pass
        return out

    def _compare(self, what, got, exp, d):
        if bytes(got) != bytes(exp):
            bad = [i for i in range(len(exp)) if got[i] != exp[i]]
            raise AssertionError(f"{what}: {len(bad)} bytes differ from the golden model, first "
                                 f"at {bad[0]:#x} (got {got[bad[0]]:#x}, expected "
                                 f"{exp[bad[0]]:#x}); {d}; seed {self.seed}")

    def _compare_outside(self, what, got, before, d, idx=None):
        inside = set()
        for s, t in model.rows(d, idx):
            inside.update(range(t, t + d.row_bytes))
        bad = [i for i in range(len(before)) if got[i] != before[i] and i not in inside]
        if bad:
            raise AssertionError(f"{what}: {len(bad)} bytes outside the destination changed, "
                                 f"first at {bad[0]:#x}; {d}; seed {self.seed}")

    def finish(self):
        self.sb.check()
        assert not self.sink.protocol_errors, self.sink.protocol_errors[:5]
        if self.check is not None:
            self.check.finish()
        if self.slave is not None:
            self.slave.finish()
            self.log.info("HBM-side AXI checker: %d read and %d write bursts checked",
                          self.slave.bursts["R"], self.slave.bursts["B"])

    # --- reset in the middle of a descriptor -------------------------------------------
    async def pulse_reset(self, cycles: int = 3):
        """Synchronous reset pulse now (the agent loop keeps running)."""
        await FallingEdge(self.dut.clk)
        self.desc.clear()
        self.dut.rst.value = 1
        await ClockCycles(self.dut.clk, cycles)
        await FallingEdge(self.dut.clk)
        self.dut.rst.value = 0

    async def reset_mid(self, d: model.Descriptor, cut: int, *, margin: int | None = None,
                        idx: list[int] | None = None):
        """Send ``d``, reset ``cut`` cycles after it is accepted, then check: no completion,
        engine idle, and every byte of both memories outside ``d``'s destination as before
        (HBM: within ``margin`` bytes of the copy's extent, the whole memory when None;
        the destination may hold anything and is read back into the references).
        ``idx``: the index list of an indexed ``d`` (as in HBM).
        """
        sram_before = bytes(self.sram.mem)
        # the stub's contents as last checked (reading 'hbm_size' bytes back costs cycles)
        hbm_before = bytes(self.shadow) if self.system else await self.hbm_read(0, self.hbm_size)
        if self.check is not None:
            self.check.expect(d, self.dcfg, self.win, idx)
        n0, sent0 = len(self.done), self.desc.sent
        self.desc.send(d.to_payload())
        await self.wait_until(lambda: self.desc.sent > sent0, timeout=2_000,
                              what=f"acceptance of {d}")
        await ClockCycles(self.dut.clk, cut)
        assert len(self.done) == n0, f"{d} completed before the cut at {cut} cycles: " \
                                     "choose a longer descriptor"
        await self.pulse_reset()
        await ClockCycles(self.dut.clk, 10)
        assert len(self.done) == n0, "a completion came out of the aborted transfer"
        assert signal_int(self.dut.o_busy) == 0, "engine busy after reset"
        inside = set()
        for _s, t in model.rows(d, idx):
            inside.update(range(t, t + d.row_bytes))
        if d.dir == DmaDir.LOAD:
            self._compare_outside("SRAM", self.sram.mem, sram_before, d, idx)
        else:
            self._compare("SRAM", self.sram.mem, sram_before, d)
        lo, hi = 0, self.hbm_size
        if margin is not None:
            ext = [a for s, t in model.rows(d, idx) for a in (s, t)]
            lo = max(0, (min(ext) - margin) // self.W * self.W)
            hi = min(self.hbm_size, max(ext) + d.row_bytes + margin)
        got = bytearray(hbm_before)
        got[lo:hi] = await self.hbm_read(lo, hi - lo)
        if d.dir == DmaDir.STORE:
            self._compare_outside("HBM", got, hbm_before, d, idx)
            for a in inside:                    # the destination may hold anything
                self.shadow[a] = got[a]
        else:
            self._compare("HBM", got, hbm_before, d)
