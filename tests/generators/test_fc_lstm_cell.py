"""FC-LSTM building blocks against hand computations: the cell (Eq. 2-4), positions (Eq. 5-7), the loss."""
import math

import pytest
import torch

from fc4dfs.zoo.generators.common import positional_encoding, relative_positions, sequence_loss
from fc4dfs.zoo.generators.fc_lstm import FCLSTMCell, FCLSTMNet


def _sig(v: torch.Tensor) -> torch.Tensor:
    return 1.0 / (1.0 + torch.exp(-v))


def test_cell_matches_hand_computed_step_of_eq_2_to_4():
    torch.manual_seed(0)
    hs, xs, fs = 2, 3, 2
    cell = FCLSTMCell(xs, hs, fs).double()
    x = torch.tensor([[0.5, -1.0, 2.0]], dtype=torch.float64)
    h0 = torch.tensor([[0.1, -0.2]], dtype=torch.float64)
    y0 = torch.tensor([[0.3, 0.7]], dtype=torch.float64)
    freq = torch.tensor([[1.5, -0.5]], dtype=torch.float64)
    wx, wh, b, wf = cell.weight_x.detach(), cell.weight_h.detach(), cell.bias.detach(), cell.weight_freq.detach()

    def gate(k: int, with_freq: bool) -> torch.Tensor:
        rows = slice(k * hs, (k + 1) * hs)
        # W_k . [h_{t-1}, x_t, (freq_t)] + b_k written out as one matrix on the concatenation
        w = torch.cat([wh[rows], wx[rows]] + ([wf[rows]] if with_freq else []), dim=1)
        v = torch.cat([h0, x] + ([freq] if with_freq else []), dim=1)
        return v @ w.T + b[rows]

    # rows are ordered f, i, o, c
    f = _sig(gate(0, True))  # Eq. 2
    i = _sig(gate(1, True))
    y_cand = torch.tanh(gate(3, False))  # Eq. 3: no freq_t
    o = _sig(gate(2, False))
    y = f * y0 + i * y_cand  # Eq. 4
    h = o * torch.tanh(y)
    got_h, got_y = cell(x, (h0, y0), freq)
    assert torch.allclose(got_y, y, atol=1e-12)
    assert torch.allclose(got_h, h, atol=1e-12)
    # the candidate and the output gate really ignore freq_t: change freq with f, i weights zeroed
    with torch.no_grad():
        cell.weight_freq.zero_()
    a = cell(x, (h0, y0), freq)
    bb = cell(x, (h0, y0), freq * 10)
    assert torch.allclose(a[0], bb[0]) and torch.allclose(a[1], bb[1])


def test_cell_without_freq_is_the_standard_lstm_cell():
    torch.manual_seed(1)
    hs, xs = 4, 3
    cell = FCLSTMCell(xs, hs, 0)
    ref = torch.nn.LSTMCell(xs, hs)
    f, i, o, c = (slice(k * hs, (k + 1) * hs) for k in range(4))
    with torch.no_grad():  # torch orders gates i, f, g, o
        ref.weight_ih.copy_(torch.cat([cell.weight_x[i], cell.weight_x[f], cell.weight_x[c], cell.weight_x[o]]))
        ref.weight_hh.copy_(torch.cat([cell.weight_h[i], cell.weight_h[f], cell.weight_h[c], cell.weight_h[o]]))
        ref.bias_ih.copy_(torch.cat([cell.bias[i], cell.bias[f], cell.bias[c], cell.bias[o]]))
        ref.bias_hh.zero_()
    x, h0, y0 = torch.randn(5, xs), torch.randn(5, hs), torch.randn(5, hs)
    h_ref, c_ref = ref(x, (h0, y0))
    h, y = cell(x, (h0, y0))
    assert torch.allclose(h, h_ref, atol=1e-6) and torch.allclose(y, c_ref, atol=1e-6)
    with pytest.raises(ValueError):
        cell(x, (h0, y0), torch.randn(5, 2))


@pytest.mark.parametrize("freq", [True, False])
def test_network_rollout_equals_step_by_step_cell(freq):
    """The fused loop of FCLSTMNet is the plain recurrence: x_t = FeatNet(lm_{t-1}), cell, head."""
    torch.manual_seed(2)
    n_lm, n_lab, steps = 5, 3, 7
    net = FCLSTMNet(n_lm, n_lab, identity_dims=3, hidden=6, feat_dim=4, freq=freq, pe_dim=8, freq_dim=3,
                    pe_base=10000.0).double()
    neutral = torch.randn(2, 3, dtype=torch.float64)
    labels, lengths, fps = torch.tensor([0, 2]), torch.tensor([7, 12]), torch.tensor([30.0, 20.0])
    got = net(neutral, labels, lengths, fps, steps)
    cond = net.feat_cond(torch.cat([neutral, torch.nn.functional.one_hot(labels, n_lab).double()], 1))
    freq_all = net.frequency(lengths, fps, steps).double() if freq else None
    prev = torch.zeros(2, 3 * n_lm, dtype=torch.float64)
    h = y = torch.zeros(2, 6, dtype=torch.float64)
    expect = [prev]
    for t in range(1, steps):
        x = torch.nn.functional.silu(net.feat_prev(prev) + cond)
        h, y = net.cell(x, (h, y), None if freq_all is None else freq_all[:, t - 1])
        prev = net.head(h)
        expect.append(prev)
    assert torch.allclose(got, torch.stack(expect, 1), atol=1e-10)


@pytest.mark.parametrize("steps", [2, 9])
def test_rollout_without_autograd_equals_the_autograd_rollout(steps):
    """Inference reuses buffers across steps; it must give the training rollout's values, and training
    must still backpropagate through every step."""
    torch.manual_seed(3)
    net = FCLSTMNet(5, 3, identity_dims=3, hidden=6, feat_dim=4, freq=True, pe_dim=8, freq_dim=3,
                    pe_base=10000.0).double()
    args = (torch.randn(4, 3, dtype=torch.float64), torch.tensor([0, 2, 1, 0]), torch.tensor([7, 12, 9, 9]),
            torch.tensor([30.0, 20.0, 25.0, 30.0]), steps)
    trained = net(*args)
    trained.square().sum().backward()
    if steps > 2:  # from step 2 on every weight takes part
        assert all(p.grad is not None and torch.isfinite(p.grad).all() for p in net.parameters())
    with torch.no_grad():
        inferred = net(*args)
    assert inferred.shape == trained.shape == (4, steps, 15)
    assert torch.allclose(inferred, trained.detach(), atol=1e-12), (inferred - trained).abs().max()


def test_relative_positions_eq5():
    lengths = torch.tensor([5, 3])
    fps = torch.tensor([10.0, 60.0])
    p = relative_positions(lengths, fps, 5)
    assert torch.allclose(p[0], torch.tensor([0.0, 0.25, 0.5, 0.75, 1.0]))
    assert torch.allclose(p[1, :3], torch.tensor([0.0, 0.5, 1.0]))
    # previous / next frame positions used by Eq. 7
    assert torch.allclose(relative_positions(lengths[:1], fps[:1], 2, offset=-1)[0], torch.tensor([-0.25, 0.0]))
    assert torch.allclose(relative_positions(lengths[:1], fps[:1], 2, offset=4)[0], torch.tensor([1.0, 1.25]))
    # p_t / L: the frame rate cancels once the length is fixed
    assert torch.allclose(relative_positions(lengths, torch.tensor([24.0, 7.0]), 5), p)


def test_positional_encoding_eq6():
    p = torch.tensor([0.0, 0.25, 1.0])
    pe = positional_encoding(p, 4)
    for k, v in enumerate(p.tolist()):
        expect = [math.sin(v), math.cos(v), math.sin(v / 100.0), math.cos(v / 100.0)]  # 10000^(2/4) = 100
        assert torch.allclose(pe[k], torch.tensor(expect), atol=1e-6)
    assert positional_encoding(torch.zeros(2, 3), 8).shape == (2, 3, 8)
    with pytest.raises(ValueError):
        positional_encoding(p, 3)


def test_frequency_features_eq7_depend_on_length_not_on_fps():
    torch.manual_seed(0)
    net = FCLSTMNet(4, 2, identity_dims=2, hidden=8, feat_dim=8, freq=True, pe_dim=8, freq_dim=6, pe_base=10000.0)
    f20 = net.frequency(torch.tensor([20]), torch.tensor([30.0]), 20)
    assert f20.shape == (1, 19, 6)
    assert torch.allclose(f20, net.frequency(torch.tensor([20]), torch.tensor([12.0]), 20), atol=1e-6)
    f30 = net.frequency(torch.tensor([30]), torch.tensor([30.0]), 30)
    assert not torch.allclose(f20[0, 1], f30[0, 1])  # frame 2 of 20 is later than frame 2 of 30


def test_loss_eq10_to_12_by_hand():
    target = torch.tensor([[[0.0], [1.0], [3.0], [0.0]]])  # [B=1, T=4, D=1]; frame 3 is padding
    pred = torch.tensor([[[0.0], [2.0], [3.0], [9.0]]])
    mask = torch.tensor([[True, True, True, False]])
    total, l_re, l_t = sequence_loss(pred, target, mask, alpha=0.5)
    assert l_re.item() == pytest.approx((1 + 0) / 2)  # |2-1|, |3-3|
    assert l_t.item() == pytest.approx((1 + 1) / 2)  # motions pred 2, 1 vs target 1, 2
    assert total.item() == pytest.approx(0.5 + 0.5 * 1.0)
    assert sequence_loss(pred, target, mask, alpha=0.0)[0].item() == pytest.approx(0.5)
