"""runpipe's tabular MLP backbone in PyTorch, for the reference scripts that build a fusion
network around it (torch_multimodal.py, sweep/reference.py): one embedding per categorical
column (fastai's width rule, capped at 32) concatenated with the numeric columns, then
Linear → ReLU → dropout per hidden width."""


def embedding_dim(cardinality):
    """runpipe's TabularMLPConfig.embeddingDim: fastai's rule, capped at 32."""
    v = 1.6 * max(cardinality, 1) ** 0.56
    return max(1, min(32, round(v)))   # Python's round: half to even, as Swift's .toNearestOrEven


def tabular_mlp(torch, numeric_count, cardinalities, hidden, dropout):
    """The backbone as an nn.Module; its `out_features` is the last hidden width."""
    nn = torch.nn

    class TabularMLP(nn.Module):
        def __init__(self):
            super().__init__()
            dims = [embedding_dim(c) for c in cardinalities]
            self.embeddings = nn.ModuleList(nn.Embedding(c, d) for c, d in zip(cardinalities, dims))
            width, layers = numeric_count + sum(dims), []
            for w in hidden:
                layers.append(nn.Linear(width, w))
                width = w
            self.layers = nn.ModuleList(layers)
            self.dropout = nn.Dropout(dropout)
            self.out_features = width

        def forward(self, numeric, categorical):
            h = torch.cat([numeric] + [e(categorical[:, j]) for j, e in enumerate(self.embeddings)], dim=1)
            for layer in self.layers:
                h = self.dropout(torch.relu(layer(h)))
            return h

    return TabularMLP()
