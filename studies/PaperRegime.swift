// The paper presets' regimes: FastCLIP's Medium (CC3M) and Large (CC12M) settings (§8.2) scaled to
// a 2-core machine by the ratios that govern the method, fixed before any paper-preset run:
//
// | quantity                      | paper, Medium (CC3M)          | miniature, Medium               |
// | ----------------------------- | ----------------------------- | ------------------------------- |
// | model                         | RN50 (d = 1024)               | micro: ViT 32 px / 4, 2 × 64    |
// | data                          | 2,723,840 pairs               | 10,240 shapes pairs             |
// | epochs                        | 37                            | 37                              |
// | global batch                  | 1,024 (8 × 128)               | 128                             |
// | batch / data                  | 1 / 2,660                     | 1 / 80                          |
// | steps                         | 98,418                        | 2,960                           |
// | warm-up                       | 10,000 steps = 10.2%          | 296 steps = 10%                 |
// | model lr, lr_min, wd          | 1e-3, 0, 0.1 (AdamW)          | the same                        |
// | γ: schedule, γ_min, E         | cosine, 0.2, 18 of 37 epochs  | the same                        |
// | v3: ρ, lr_τ (step_thresh)     | 6.5, 2e-4                     | 6.5, 6.65e-3 = 2e-4 × 98,418 / 2,960 |
// | v2: τ_init, lr_τ, ρ           | 0.03, 0.0133 per visit, 7.0   | the same (37 visits a sample)   |
// | τ_init (others)               | 0.07                          | 0.07                            |
//
// v3's lr_τ keeps lr_τ × steps, how far Adam can move s = ln(1/τ) over the run, equal to the
// paper's. v2's per-sample lr_τ needs no scaling: each sample is visited once per epoch in both.
// The tokenizer is a BPE of 1,024 symbols trained on the captions (the world has about 250 words),
// so the runs do not depend on whether CLIP's merges file is installed.

import Foundation
import Workbench

/// Epochs, batch and data of the Medium regime.
let mediumEpochs = 37, mediumBatch = 128, mediumData = 10_240

/// The paper's steps at Medium: 2,723,840 pairs × 37 epochs / 1,024.
let paperMediumSteps = 2_723_840.0 * 37 / 1024

/// v3's lr_τ for a run of `steps`: the paper's 2e-4 × (paper steps / steps), rounded to 3 digits.
func scaledRGCLGLearningRateTau(paperRate: Double = 2e-4, paperSteps: Double = paperMediumSteps, steps: Int) -> Double {
    let v = paperRate * paperSteps / Double(steps)
    let digits = pow(10, 2 - floor(log10(v)))
    return (v * digits).rounded() / digits
}

/// Settings every paper preset shares: the micro model, the trained tokenizer, the paper's lr,
/// wd and γ_min.
let paperCommonSettings: [String: ConfigValue] = [
    "model": "micro", "tokenizer": "trained", "vocabSize": 1024, "lr": 1e-3, "lrMin": 0.0, "wd": 0.1, "objective.gammaMin": 0.2, "evalEvery": 1,
]

/// The Medium regime of the table above.
let mediumPaperSettings: [String: ConfigValue] = paperCommonSettings.merging([
    "data": .string("shapes:\(mediumData)"), "epochs": .int(mediumEpochs), "batchSize": .int(mediumBatch),
    "warmup": .int(mediumEpochs * mediumData / mediumBatch / 10), "objective.gammaDecayEpochs": 18,
    "objective.lrTauRGCLG": .double(scaledRGCLGLearningRateTau(steps: mediumEpochs * mediumData / mediumBatch)),
]) { _, new in new }

/// The Medium regime in words, for findings.md.
let mediumRegime = """
    **Regime** (fixed before the runs; FastCLIP §8.2 Medium → miniature): model RN50 → micro (ViT, 32 px images, patch 4, \
    2 layers of width 64 per tower); data CC3M 2.72M pairs → 10,240 shapes pairs; 37 epochs → 37; batch 1,024 → 128 \
    (batch/data 1/2,660 → 1/80); steps 98.4k → 2,960; warm-up 10k steps (10%) → 296 (10%); lr 1e-3, wd 0.1, cosine to 0 → \
    the same; γ cosine over 18 of 37 epochs to γ_min 0.2 → the same; v3 ρ 6.5 → 6.5, lr_τ 2e-4 → 6.65e-3 (lr_τ × steps \
    kept); v2 τ_init 0.03, lr_τ 0.0133 per visit, ρ 7 → the same; 3 seeds. What differs: the data (synthetic shapes, \
    evaluated on held-out zero-shot shape, colour, count and position and 1,000-pair retrieval instead of DataComp), the \
    model's size, and a mini-batch holding 33× more of the data than the paper's.
    """
