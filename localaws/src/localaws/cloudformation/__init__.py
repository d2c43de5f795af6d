"""CloudFormation: what moto's change sets leave out (template, outputs)."""
