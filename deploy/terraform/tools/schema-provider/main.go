// Command terraform-provider-aws (schema only) serves the AWS provider's real schema to
// Terraform, and nothing else.
//
// Why: the Terraform registry cannot be reached from our machines or CI, and the real
// provider cannot be built from the Go module proxy (it only serves v1.60.0 from 2019).
// Terraform needs a provider binary for `terraform validate` and for `terraform test`
// with `mock_provider "aws"` (mocks still take their schema from the provider). This
// server answers GetProviderSchema from schema.json (rebuilt from the npm package
// @cdktf/provider-aws by cdktf_schema.py) so that both check our code against the real
// 6.x attribute names, types, required/optional flags and block nesting.
//
// Contract: it validates nothing beyond the schema and refuses every RPC that would need
// AWS (plan, apply, read, import): a real plan or apply must use the real provider, and
// this binary must never be installed where that can happen.
package main

import (
	"bytes"
	"compress/gzip"
	"context"
	_ "embed"
	"encoding/json"
	"fmt"
	"io"
	"log"
	"sort"
	"sync"

	"github.com/hashicorp/terraform-plugin-go/tfprotov6"
	"github.com/hashicorp/terraform-plugin-go/tfprotov6/tf6server"
	"github.com/hashicorp/terraform-plugin-go/tftypes"
)

//go:embed schema.json.gz
var schemaGz []byte

// jsonBlock is one block of `terraform providers schema -json`.
type jsonBlock struct {
	Attributes map[string]jsonAttribute `json:"attributes"`
	BlockTypes map[string]jsonBlockType `json:"block_types"`
}

type jsonAttribute struct {
	Type      json.RawMessage `json:"type"`
	Required  bool            `json:"required"`
	Optional  bool            `json:"optional"`
	Computed  bool            `json:"computed"`
	Sensitive bool            `json:"sensitive"`
}

type jsonBlockType struct {
	NestingMode string    `json:"nesting_mode"`
	Block       jsonBlock `json:"block"`
	MinItems    int64     `json:"min_items"`
	MaxItems    int64     `json:"max_items"`
}

type jsonSchema struct {
	Version int64     `json:"version"`
	Block   jsonBlock `json:"block"`
}

type jsonProvider struct {
	Provider          jsonSchema            `json:"provider"`
	ResourceSchemas   map[string]jsonSchema `json:"resource_schemas"`
	DataSourceSchemas map[string]jsonSchema `json:"data_source_schemas"`
}

type jsonDocument struct {
	ProviderSchemas map[string]jsonProvider `json:"provider_schemas"`
}

// ctyType turns a cty JSON type ("string", ["list","string"], ["object",{...}]) into tftypes.
func ctyType(raw json.RawMessage) (tftypes.Type, error) {
	var prim string
	if err := json.Unmarshal(raw, &prim); err == nil {
		switch prim {
		case "string":
			return tftypes.String, nil
		case "number":
			return tftypes.Number, nil
		case "bool":
			return tftypes.Bool, nil
		case "dynamic":
			return tftypes.DynamicPseudoType, nil
		}
		return nil, fmt.Errorf("unknown primitive type %q", prim)
	}
	var pair []json.RawMessage
	if err := json.Unmarshal(raw, &pair); err != nil || len(pair) != 2 {
		return nil, fmt.Errorf("bad type %s", raw)
	}
	var kind string
	if err := json.Unmarshal(pair[0], &kind); err != nil {
		return nil, err
	}
	switch kind {
	case "list", "set", "map":
		elem, err := ctyType(pair[1])
		if err != nil {
			return nil, err
		}
		switch kind {
		case "list":
			return tftypes.List{ElementType: elem}, nil
		case "set":
			return tftypes.Set{ElementType: elem}, nil
		default:
			return tftypes.Map{ElementType: elem}, nil
		}
	case "object":
		var attrs map[string]json.RawMessage
		if err := json.Unmarshal(pair[1], &attrs); err != nil {
			return nil, err
		}
		out := tftypes.Object{AttributeTypes: map[string]tftypes.Type{}}
		for name, t := range attrs {
			conv, err := ctyType(t)
			if err != nil {
				return nil, fmt.Errorf("%s: %w", name, err)
			}
			out.AttributeTypes[name] = conv
		}
		return out, nil
	case "tuple":
		var elems []json.RawMessage
		if err := json.Unmarshal(pair[1], &elems); err != nil {
			return nil, err
		}
		out := tftypes.Tuple{}
		for _, t := range elems {
			conv, err := ctyType(t)
			if err != nil {
				return nil, err
			}
			out.ElementTypes = append(out.ElementTypes, conv)
		}
		return out, nil
	}
	return nil, fmt.Errorf("unknown type kind %q", kind)
}

var nestingModes = map[string]tfprotov6.SchemaNestedBlockNestingMode{
	"single": tfprotov6.SchemaNestedBlockNestingModeSingle,
	"list":   tfprotov6.SchemaNestedBlockNestingModeList,
	"set":    tfprotov6.SchemaNestedBlockNestingModeSet,
	"map":    tfprotov6.SchemaNestedBlockNestingModeMap,
	"group":  tfprotov6.SchemaNestedBlockNestingModeGroup,
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

func convertBlock(b jsonBlock) (*tfprotov6.SchemaBlock, error) {
	out := &tfprotov6.SchemaBlock{}
	for _, name := range sortedKeys(b.Attributes) {
		a := b.Attributes[name]
		t, err := ctyType(a.Type)
		if err != nil {
			return nil, fmt.Errorf("attribute %s: %w", name, err)
		}
		out.Attributes = append(out.Attributes, &tfprotov6.SchemaAttribute{
			Name: name, Type: t, Required: a.Required, Optional: a.Optional,
			Computed: a.Computed, Sensitive: a.Sensitive,
		})
	}
	for _, name := range sortedKeys(b.BlockTypes) {
		bt := b.BlockTypes[name]
		mode, ok := nestingModes[bt.NestingMode]
		if !ok {
			return nil, fmt.Errorf("block %s: unknown nesting mode %q", name, bt.NestingMode)
		}
		inner, err := convertBlock(bt.Block)
		if err != nil {
			return nil, fmt.Errorf("block %s: %w", name, err)
		}
		out.BlockTypes = append(out.BlockTypes, &tfprotov6.SchemaNestedBlock{
			TypeName: name, Nesting: mode, Block: inner, MinItems: bt.MinItems, MaxItems: bt.MaxItems,
		})
	}
	return out, nil
}

func convertSchema(s jsonSchema) (*tfprotov6.Schema, error) {
	block, err := convertBlock(s.Block)
	if err != nil {
		return nil, err
	}
	return &tfprotov6.Schema{Version: s.Version, Block: block}, nil
}

type server struct {
	once     sync.Once
	loadErr  error
	provider *tfprotov6.Schema
	res      map[string]*tfprotov6.Schema
	data     map[string]*tfprotov6.Schema
}

// load parses the embedded schema once; Terraform asks for it several times per run.
func (s *server) load() error {
	s.once.Do(func() {
		zr, err := gzip.NewReader(bytes.NewReader(schemaGz))
		if err != nil {
			s.loadErr = err
			return
		}
		raw, err := io.ReadAll(zr)
		if err != nil {
			s.loadErr = err
			return
		}
		var doc jsonDocument
		if err := json.Unmarshal(raw, &doc); err != nil {
			s.loadErr = err
			return
		}
		p, ok := doc.ProviderSchemas["registry.terraform.io/hashicorp/aws"]
		if !ok {
			s.loadErr = fmt.Errorf("schema.json has no hashicorp/aws provider")
			return
		}
		if s.provider, err = convertSchema(p.Provider); err != nil {
			s.loadErr = fmt.Errorf("provider: %w", err)
			return
		}
		s.res = map[string]*tfprotov6.Schema{}
		s.data = map[string]*tfprotov6.Schema{}
		for name, js := range p.ResourceSchemas {
			if s.res[name], err = convertSchema(js); err != nil {
				s.loadErr = fmt.Errorf("resource %s: %w", name, err)
				return
			}
		}
		for name, js := range p.DataSourceSchemas {
			if s.data[name], err = convertSchema(js); err != nil {
				s.loadErr = fmt.Errorf("data source %s: %w", name, err)
				return
			}
		}
	})
	return s.loadErr
}

func errDiag(summary string) []*tfprotov6.Diagnostic {
	return []*tfprotov6.Diagnostic{{Severity: tfprotov6.DiagnosticSeverityError, Summary: summary}}
}

// refuse is the answer to every RPC that needs AWS.
func refuse(rpc string) []*tfprotov6.Diagnostic {
	return errDiag(rpc + " is not available: this is the schema-only AWS provider used by " +
		"terraform validate and terraform test with mock providers; install the real " +
		"hashicorp/aws provider to plan or apply")
}

func (s *server) GetMetadata(context.Context, *tfprotov6.GetMetadataRequest) (*tfprotov6.GetMetadataResponse, error) {
	if err := s.load(); err != nil {
		return &tfprotov6.GetMetadataResponse{Diagnostics: errDiag(err.Error())}, nil
	}
	resp := &tfprotov6.GetMetadataResponse{ServerCapabilities: &tfprotov6.ServerCapabilities{GetProviderSchemaOptional: false}}
	for _, n := range sortedKeys(s.res) {
		resp.Resources = append(resp.Resources, tfprotov6.ResourceMetadata{TypeName: n})
	}
	for _, n := range sortedKeys(s.data) {
		resp.DataSources = append(resp.DataSources, tfprotov6.DataSourceMetadata{TypeName: n})
	}
	return resp, nil
}

func (s *server) GetProviderSchema(context.Context, *tfprotov6.GetProviderSchemaRequest) (*tfprotov6.GetProviderSchemaResponse, error) {
	if err := s.load(); err != nil {
		return &tfprotov6.GetProviderSchemaResponse{Diagnostics: errDiag(err.Error())}, nil
	}
	return &tfprotov6.GetProviderSchemaResponse{
		Provider: s.provider, ResourceSchemas: s.res, DataSourceSchemas: s.data,
		Functions: map[string]*tfprotov6.Function{}, EphemeralResourceSchemas: map[string]*tfprotov6.Schema{},
	}, nil
}

func (s *server) GetResourceIdentitySchemas(context.Context, *tfprotov6.GetResourceIdentitySchemasRequest) (*tfprotov6.GetResourceIdentitySchemasResponse, error) {
	return &tfprotov6.GetResourceIdentitySchemasResponse{IdentitySchemas: map[string]*tfprotov6.ResourceIdentitySchema{}}, nil
}

func (s *server) ValidateProviderConfig(_ context.Context, req *tfprotov6.ValidateProviderConfigRequest) (*tfprotov6.ValidateProviderConfigResponse, error) {
	return &tfprotov6.ValidateProviderConfigResponse{PreparedConfig: req.Config}, nil
}

func (s *server) ConfigureProvider(context.Context, *tfprotov6.ConfigureProviderRequest) (*tfprotov6.ConfigureProviderResponse, error) {
	return &tfprotov6.ConfigureProviderResponse{}, nil
}

func (s *server) StopProvider(context.Context, *tfprotov6.StopProviderRequest) (*tfprotov6.StopProviderResponse, error) {
	return &tfprotov6.StopProviderResponse{}, nil
}

func (s *server) ValidateResourceConfig(context.Context, *tfprotov6.ValidateResourceConfigRequest) (*tfprotov6.ValidateResourceConfigResponse, error) {
	return &tfprotov6.ValidateResourceConfigResponse{}, nil
}

func (s *server) UpgradeResourceState(context.Context, *tfprotov6.UpgradeResourceStateRequest) (*tfprotov6.UpgradeResourceStateResponse, error) {
	return &tfprotov6.UpgradeResourceStateResponse{Diagnostics: refuse("UpgradeResourceState")}, nil
}

func (s *server) ReadResource(context.Context, *tfprotov6.ReadResourceRequest) (*tfprotov6.ReadResourceResponse, error) {
	return &tfprotov6.ReadResourceResponse{Diagnostics: refuse("ReadResource")}, nil
}

func (s *server) PlanResourceChange(context.Context, *tfprotov6.PlanResourceChangeRequest) (*tfprotov6.PlanResourceChangeResponse, error) {
	return &tfprotov6.PlanResourceChangeResponse{Diagnostics: refuse("PlanResourceChange")}, nil
}

func (s *server) ApplyResourceChange(context.Context, *tfprotov6.ApplyResourceChangeRequest) (*tfprotov6.ApplyResourceChangeResponse, error) {
	return &tfprotov6.ApplyResourceChangeResponse{Diagnostics: refuse("ApplyResourceChange")}, nil
}

func (s *server) ImportResourceState(context.Context, *tfprotov6.ImportResourceStateRequest) (*tfprotov6.ImportResourceStateResponse, error) {
	return &tfprotov6.ImportResourceStateResponse{Diagnostics: refuse("ImportResourceState")}, nil
}

func (s *server) MoveResourceState(context.Context, *tfprotov6.MoveResourceStateRequest) (*tfprotov6.MoveResourceStateResponse, error) {
	return &tfprotov6.MoveResourceStateResponse{Diagnostics: refuse("MoveResourceState")}, nil
}

func (s *server) UpgradeResourceIdentity(context.Context, *tfprotov6.UpgradeResourceIdentityRequest) (*tfprotov6.UpgradeResourceIdentityResponse, error) {
	return &tfprotov6.UpgradeResourceIdentityResponse{Diagnostics: refuse("UpgradeResourceIdentity")}, nil
}

func (s *server) GenerateResourceConfig(context.Context, *tfprotov6.GenerateResourceConfigRequest) (*tfprotov6.GenerateResourceConfigResponse, error) {
	return &tfprotov6.GenerateResourceConfigResponse{Diagnostics: refuse("GenerateResourceConfig")}, nil
}

func (s *server) ValidateDataResourceConfig(context.Context, *tfprotov6.ValidateDataResourceConfigRequest) (*tfprotov6.ValidateDataResourceConfigResponse, error) {
	return &tfprotov6.ValidateDataResourceConfigResponse{}, nil
}

func (s *server) ReadDataSource(context.Context, *tfprotov6.ReadDataSourceRequest) (*tfprotov6.ReadDataSourceResponse, error) {
	return &tfprotov6.ReadDataSourceResponse{Diagnostics: refuse("ReadDataSource")}, nil
}

func (s *server) GetFunctions(context.Context, *tfprotov6.GetFunctionsRequest) (*tfprotov6.GetFunctionsResponse, error) {
	return &tfprotov6.GetFunctionsResponse{Functions: map[string]*tfprotov6.Function{}}, nil
}

func (s *server) CallFunction(context.Context, *tfprotov6.CallFunctionRequest) (*tfprotov6.CallFunctionResponse, error) {
	return &tfprotov6.CallFunctionResponse{Error: &tfprotov6.FunctionError{Text: "this provider has no functions"}}, nil
}

func (s *server) ValidateEphemeralResourceConfig(context.Context, *tfprotov6.ValidateEphemeralResourceConfigRequest) (*tfprotov6.ValidateEphemeralResourceConfigResponse, error) {
	return &tfprotov6.ValidateEphemeralResourceConfigResponse{Diagnostics: refuse("ValidateEphemeralResourceConfig")}, nil
}

func (s *server) OpenEphemeralResource(context.Context, *tfprotov6.OpenEphemeralResourceRequest) (*tfprotov6.OpenEphemeralResourceResponse, error) {
	return &tfprotov6.OpenEphemeralResourceResponse{Diagnostics: refuse("OpenEphemeralResource")}, nil
}

func (s *server) RenewEphemeralResource(context.Context, *tfprotov6.RenewEphemeralResourceRequest) (*tfprotov6.RenewEphemeralResourceResponse, error) {
	return &tfprotov6.RenewEphemeralResourceResponse{Diagnostics: refuse("RenewEphemeralResource")}, nil
}

func (s *server) CloseEphemeralResource(context.Context, *tfprotov6.CloseEphemeralResourceRequest) (*tfprotov6.CloseEphemeralResourceResponse, error) {
	return &tfprotov6.CloseEphemeralResourceResponse{Diagnostics: refuse("CloseEphemeralResource")}, nil
}

func main() {
	if err := tf6server.Serve("registry.terraform.io/hashicorp/aws", func() tfprotov6.ProviderServer { return &server{} }); err != nil {
		log.Fatal(err)
	}
}
