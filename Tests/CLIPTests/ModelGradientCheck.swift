// The whole-model gradient check both CLIP test suites use: OpenCLIP's batch loss on the model's
// features, every parameter's gradient against finite differences (Double).

import CLIP
import Compute
import Layers
import Objectives
import TestSupport

/// Checks the gradients of the mini-batch contrastive loss over `model` on `images` (B, 3, S, S)
/// and `ids` (B, T), with `kept` patch indices when `activations` were made for a mask. Tensors
/// named in `skipping` (fixed tables) are left out.
func checkModelGradients(
    _ model: CLIPModel<Double>, images: AlignedBuffer<Double>, ids: [Int32], kept: [Int32]? = nil,
    activations acts: CLIPModel<Double>.Activations, skipping: Set<String> = []
) -> [GradientReport] {
    let b = acts.batch, e = model.config.embedDimension
    let loss = MiniBatchContrastiveLoss<Double>(batch: b, dimension: e, workspace: Workspace())
    let dImg = AlignedBuffer<Double>(count: b * e), dTxt = AlignedBuffer<Double>(count: b * e)
    let tensors = model.store.layout.views.filter { !skipping.contains($0.name) }.map {
        CheckedTensor(name: $0.name, values: model.store.value($0), gradient: model.store.grad($0), count: $0.count)
    }
    return checkGradients(tensors, maxElements: 24) {
        model.forward(images: images.pointer, ids: ids, keptPatches: kept, activations: acts)
        return loss.forward(imageFeatures: acts.imageFeatures, textFeatures: acts.textFeatures, logitScale: model.store.value(model.logitScale).pointee)
    } backward: {
        let dt = loss.backward(dImageFeatures: dImg.pointer, dTextFeatures: dTxt.pointer)
        model.store.grad(model.logitScale).pointee += dt
        model.backward(dImageFeatures: dImg.pointer, dTextFeatures: dTxt.pointer, activations: acts)
    }
}
