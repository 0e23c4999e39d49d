// crdtestserver: a real Kubernetes API server for custom resources, for flotta's tests.
//
// It is the CRD half of kube-apiserver, k8s.io/apiextensions-apiserver (the same code that
// serves CustomResourceDefinitions and custom resources in a real cluster: structural-schema
// validation, defaulting, printer columns, the status subresource, server-side apply, watch),
// run standalone against etcd. tests/src/kube.rs starts it (with Debian's etcd-server) on
// loopback for the tests.
//
// What it leaves out, because those need a full kube-apiserver: the core API (no namespaces,
// pods, events, configmaps, secrets, leases; /api and /api/v1 answer empty lists so that
// discovery clients work), admission (and admission webhooks), conversion webhooks, RBAC,
// API priority and fairness, garbage collection. Authentication is by client certificate only
// (--client-ca-file; no tokens: there is no TokenReview) and only the group system:masters is
// authorised. It serves /apis discovery for established CRDs (the aggregator does that in
// kube-apiserver) and OpenAPI v2/v3.
//
// Built by scripts/kube-crd-server.sh in GOPATH mode from Debian sid's Go source packages (the
// list is go-packages.txt beside this file; no module proxy), cached under
// ~/.cache/flotta/kube-crd-server/. A change to this file makes that script build it again.
package main

import (
	"net"
	"net/http"
	"strings"
	"os"

	"github.com/spf13/cobra"
	noopoteltrace "go.opentelemetry.io/otel/trace/noop"

	"k8s.io/apiextensions-apiserver/pkg/apiserver"
	"k8s.io/apiextensions-apiserver/pkg/cmd/server/options"
	generatedopenapi "k8s.io/apiextensions-apiserver/pkg/generated/openapi"
	openapinamer "k8s.io/apiserver/pkg/endpoints/openapi"
	genericapiserver "k8s.io/apiserver/pkg/server"
	"k8s.io/apiserver/pkg/util/openapi"
	"k8s.io/apiserver/pkg/util/webhook"
	"k8s.io/client-go/kubernetes/scheme"
	"k8s.io/component-base/cli"
	netutils "k8s.io/utils/net"

	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	utilversion "k8s.io/apimachinery/pkg/version"
	"k8s.io/client-go/tools/cache"
	"sort"
	"sync"
)

// installLegacyCRDDiscovery keeps the legacy /apis APIGroupList in step with established CRDs.
func installLegacyCRDDiscovery(s *apiserver.CustomResourceDefinitions) {
	inf := s.Informers.Apiextensions().V1().CustomResourceDefinitions()
	mgr := s.GenericAPIServer.DiscoveryGroupManager
	var mu sync.Mutex
	added := map[string]bool{}
	sync := func() {
		mu.Lock()
		defer mu.Unlock()
		crds, _ := inf.Lister().List(labels.Everything())
		groups := map[string]map[string]bool{}
		for _, crd := range crds {
			established := false
			for _, c := range crd.Status.Conditions {
				if c.Type == apiextensionsv1.Established && c.Status == apiextensionsv1.ConditionTrue {
					established = true
				}
			}
			if !established {
				continue
			}
			for _, v := range crd.Spec.Versions {
				if v.Served {
					if groups[crd.Spec.Group] == nil {
						groups[crd.Spec.Group] = map[string]bool{}
					}
					groups[crd.Spec.Group][v.Name] = true
				}
			}
		}
		for g := range added {
			if groups[g] == nil {
				mgr.RemoveGroup(g)
				delete(added, g)
			}
		}
		for g, vs := range groups {
			names := []string{}
			for v := range vs {
				names = append(names, v)
			}
			sort.Slice(names, func(i, j int) bool { return utilversion.CompareKubeAwareVersionStrings(names[i], names[j]) > 0 })
			ag := metav1.APIGroup{Name: g}
			for _, v := range names {
				ag.Versions = append(ag.Versions, metav1.GroupVersionForDiscovery{GroupVersion: g + "/" + v, Version: v})
			}
			ag.PreferredVersion = ag.Versions[0]
			mgr.AddGroup(ag)
			added[g] = true
		}
	}
	inf.Informer().AddEventHandler(cache.ResourceEventHandlerFuncs{
		AddFunc:    func(interface{}) { sync() },
		UpdateFunc: func(interface{}, interface{}) { sync() },
		DeleteFunc: func(interface{}) { sync() },
	})
}

func main() {
	ctx := genericapiserver.SetupSignalContext()
	o := options.NewCustomResourceDefinitionsServerOptions(os.Stdout, os.Stderr)
	o.RecommendedOptions.Authentication.RemoteKubeConfigFileOptional = true
	o.RecommendedOptions.Authentication.SkipInClusterLookup = true
	o.RecommendedOptions.Authorization.RemoteKubeConfigFileOptional = true
	o.RecommendedOptions.CoreAPI = nil
	o.RecommendedOptions.Admission = nil
	o.RecommendedOptions.Features.EnablePriorityAndFairness = false

	cmd := &cobra.Command{
		Short: "standalone CRD API server for tests",
		PersistentPreRunE: func(*cobra.Command, []string) error {
			return o.ServerRunOptions.ComponentGlobalsRegistry.Set()
		},
		RunE: func(c *cobra.Command, args []string) error {
			if err := o.Complete(); err != nil {
				return err
			}
			if err := o.Validate(); err != nil {
				return err
			}
			if err := o.RecommendedOptions.SecureServing.MaybeDefaultWithSelfSignedCerts("localhost", nil, []net.IP{netutils.ParseIPSloppy("127.0.0.1")}); err != nil {
				return err
			}
			sc := genericapiserver.NewRecommendedConfig(apiserver.Codecs)
			if err := o.ServerRunOptions.ApplyTo(&sc.Config); err != nil {
				return err
			}
			if err := o.RecommendedOptions.ApplyTo(sc); err != nil {
				return err
			}
			if err := o.APIEnablement.ApplyTo(&sc.Config, apiserver.DefaultAPIResourceConfigSource(), apiserver.Scheme); err != nil {
				return err
			}
			getDefs := openapi.GetOpenAPIDefinitionsWithoutDisabledFeatures(generatedopenapi.GetOpenAPIDefinitions)
			sc.OpenAPIConfig = genericapiserver.DefaultOpenAPIConfig(getDefs, openapinamer.NewDefinitionNamer(apiserver.Scheme, scheme.Scheme))
			sc.OpenAPIV3Config = genericapiserver.DefaultOpenAPIV3Config(getDefs, openapinamer.NewDefinitionNamer(apiserver.Scheme, scheme.Scheme))
			config := &apiserver.Config{
				GenericConfig: sc,
				ExtraConfig: apiserver.ExtraConfig{
					CRDRESTOptionsGetter: options.NewCRDRESTOptionsGetter(*o.RecommendedOptions.Etcd, sc.ResourceTransformers, sc.StorageObjectCountTracker),
					ServiceResolver:      webhook.NewDefaultServiceResolver(),
					AuthResolverWrapper:  webhook.NewDefaultAuthenticationInfoResolverWrapper(nil, nil, sc.LoopbackClientConfig, noopoteltrace.NewTracerProvider()),
				},
			}
			completed := config.Complete()
			// Standalone: serve /apis ourselves (in kube-apiserver the aggregator does it).
			completed.GenericConfig.EnableDiscovery = true
			server, err := completed.New(genericapiserver.NewEmptyDelegate())
			if err != nil {
				return err
			}
			installLegacyCRDDiscovery(server)
			// No core ("legacy") API here; answer /api and /api/v1 with empty lists so that
			// discovery clients (kube-rs Discovery, kubectl) do not fail.
			mux := server.GenericAPIServer.Handler.NonGoRestfulMux
			mux.Handle("/api", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				if strings.Contains(r.Header.Get("Accept"), "g=apidiscovery.k8s.io;v=v2") {
					// aggregated discovery (kubectl/client-go): no core group at all
					w.Header().Set("Content-Type", "application/json;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList")
					w.Write([]byte(`{"kind":"APIGroupDiscoveryList","apiVersion":"apidiscovery.k8s.io/v2","metadata":{},"items":[]}`))
					return
				}
				// legacy discovery (kube-rs Discovery needs a non-empty version list)
				w.Header().Set("Content-Type", "application/json")
				w.Write([]byte(`{"kind":"APIVersions","versions":["v1"],"serverAddressByClientCIDRs":[{"clientCIDR":"0.0.0.0/0","serverAddress":"` + r.Host + `"}]}`))
			}))
			mux.Handle("/api/v1", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				w.Header().Set("Content-Type", "application/json")
				w.Write([]byte(`{"kind":"APIResourceList","apiVersion":"v1","groupVersion":"v1","resources":[]}`))
			}))
			return server.GenericAPIServer.PrepareRun().RunWithContext(c.Context())
		},
	}
	cmd.SetContext(ctx)
	o.AddFlags(cmd.Flags())
	os.Exit(cli.Run(cmd))
}
