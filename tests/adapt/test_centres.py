"""ClassCentres: the moving average by hand, nearest-centre assignment, initialisation; k-means."""
import pytest
import torch

from kgemo.adapt import ClassCentres, kmeans, kmeans_pp


def centres_2d(momentum=0.1, per_class=1, min_count=1):
    c = ClassCentres(dim=2, num_classes=2, per_class=per_class, momentum=momentum, min_count=min_count)
    return c


def test_moving_average_by_hand():
    c = centres_2d(momentum=0.1)
    c.centres[0] = torch.tensor([[0.0, 0.0], [10.0, 10.0]])
    c.centres[1] = torch.tensor([[5.0, 5.0], [-5.0, -5.0]])
    x = torch.tensor([[1.0, 2.0], [3.0, 4.0], [20.0, 0.0], [7.0, 7.0]])
    counts = c.update(0, x, torch.tensor([0, 0, 1, -1]))        # the last row is unlabelled: it moves nothing
    assert counts.tolist() == [2, 1]
    # class 0: batch mean (2, 3) → 0.9·(0, 0) + 0.1·(2, 3) = (0.2, 0.3)
    # class 1: batch mean (20, 0) → 0.9·(10, 10) + 0.1·(20, 0) = (11, 9)
    assert torch.allclose(c.centres[0], torch.tensor([[0.2, 0.3], [11.0, 9.0]]))
    assert torch.equal(c.centres[1], torch.tensor([[5.0, 5.0], [-5.0, -5.0]]))  # the other domain is untouched
    # a second step from the new value: 0.9·(0.2, 0.3) + 0.1·(1, 1) = (0.28, 0.37)
    c.update(0, torch.tensor([[1.0, 1.0]]), torch.tensor([0]))
    assert torch.allclose(c.centres[0, 0], torch.tensor([0.28, 0.37]))
    assert torch.allclose(c.centres[0, 1], torch.tensor([11.0, 9.0]))


def test_min_count_leaves_sparse_centres_alone():
    c = centres_2d(momentum=0.5, min_count=2)
    c.update(1, torch.tensor([[2.0, 2.0], [4.0, 4.0], [8.0, 8.0]]), torch.tensor([0, 0, 1]))
    assert torch.allclose(c.centres[1], torch.tensor([[1.5, 1.5], [0.0, 0.0]]))  # 0.5·0 + 0.5·(3, 3); class 1: 1 sample


def test_update_takes_no_gradient():
    c = centres_2d(momentum=1.0)
    x = torch.tensor([[1.0, 1.0]], requires_grad=True)
    c.update(0, x, torch.tensor([1]))
    assert not c.centres.requires_grad and torch.equal(c.centres[0, 1], torch.tensor([1.0, 1.0]))


def test_several_centres_per_class_update_the_nearest_of_the_class():
    c = centres_2d(momentum=1.0, per_class=2)              # centres 0, 1 → class 0; 2, 3 → class 1
    c.centres[0] = torch.tensor([[0.0, 0.0], [4.0, 0.0], [1.0, 0.0], [9.0, 9.0]])
    x = torch.tensor([[0.9, 0.0], [3.0, 0.0]])
    # row 0 is nearest to centre 2 overall, but its class is 0: it goes to centre 0 (distance .9), not 1 (3.1)
    assert c.assign(x, torch.tensor([0, 0]), 0).tolist() == [0, 1]
    assert c.assign(x, torch.tensor([1, -1]), 0).tolist() == [2, -1]
    c.update(0, x, torch.tensor([0, 0]))
    assert torch.allclose(c.centres[0], torch.tensor([[0.9, 0.0], [3.0, 0.0], [1.0, 0.0], [9.0, 9.0]]))


def test_nearest_centres_per_domain():
    c = centres_2d()
    c.centres[0] = torch.tensor([[0.0, 0.0], [10.0, 0.0]])
    c.centres[1] = torch.tensor([[0.0, 3.0], [6.0, 0.0]])
    x = torch.tensor([[1.0, 0.0], [9.0, 0.0]])
    idx, dist = c.nearest(x, 0, k=1)
    assert idx.tolist() == [[0], [1]] and torch.allclose(dist, torch.tensor([[1.0], [1.0]]))
    idx, dist = c.nearest(x, 1, k=2)                          # both target centres, nearest first
    assert idx.tolist() == [[0, 1], [1, 0]]
    assert torch.allclose(dist, torch.tensor([[10 ** 0.5, 5.0], [3.0, 90 ** 0.5]]))
    # a domain per row: row 0 looks among the source centres, row 1 among the target ones
    idx, dist = c.nearest(x, torch.tensor([0, 1]), k=1)
    assert idx.tolist() == [[0], [1]] and torch.allclose(dist, torch.tensor([[1.0], [3.0]]))


def test_init_from_labels_is_the_class_mean_and_a_missing_class_gets_the_overall_mean():
    c = ClassCentres(dim=2, num_classes=3)
    x = torch.tensor([[0.0, 0.0], [2.0, 2.0], [6.0, 0.0], [9.0, 9.0]])
    c.init_domain(0, x, classes=torch.tensor([0, 0, 1, -1]))
    assert torch.allclose(c.centres[0], torch.tensor([[1.0, 1.0], [6.0, 0.0], [4.25, 2.75]]))
    assert c.initialised.tolist() == [True, False]


def test_init_by_kmeans_from_seeds_keeps_the_correspondence():
    c = ClassCentres(dim=2, num_classes=2)
    x = torch.tensor([[0.0, 1.0], [0.0, -1.0], [10.0, 1.0], [10.0, -1.0]])
    c.init_domain(1, x, seeds=torch.tensor([[9.0, 0.0], [1.0, 0.0]]))   # seed 0 near the right pair
    assert torch.allclose(c.centres[1], torch.tensor([[10.0, 0.0], [0.0, 0.0]]))


def test_kmeans_pp_and_kmeans():
    g = torch.Generator().manual_seed(3)
    x = torch.cat([torch.randn(20, 2, generator=g) * 0.1, torch.randn(20, 2, generator=g) * 0.1 + 5])
    seeds = kmeans_pp(x, 2, torch.Generator().manual_seed(0))
    assert torch.equal(seeds, kmeans_pp(x, 2, torch.Generator().manual_seed(0)))   # reproducible
    assert (seeds[0] - seeds[1]).norm() > 3            # D² sampling puts the second seed in the other blob
    centres, assign = kmeans(x, 2, generator=torch.Generator().manual_seed(0))
    assert sorted(torch.bincount(assign).tolist()) == [20, 20]
    assert torch.allclose(centres.sort(0).values, torch.stack([x[:20].mean(0), x[20:].mean(0)]).sort(0).values)


def test_bad_options():
    with pytest.raises(ValueError, match="momentum"):
        ClassCentres(2, 2, momentum=0.0)
